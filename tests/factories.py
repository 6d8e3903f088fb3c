"""Test data shared across packages."""

VALID_INFO = {
    "cert_org_name": "重庆东方测试有限公司",
    "cert_uscc": "91110000600037341L",
    "org_same_as_cert": "on",
    "legal_rep_name": "张三",
    "legal_rep_id_number": "360426199101010071",
    "legal_rep_mobile": "13500000000",
    "invoice_type": "normal",
    "invoice_title": "重庆东方测试有限公司",
    "invoice_taxpayer_id": "91110000600037341L",
    "invoice_email": "invoice@example.com",
    "agent_name": "李四",
    "agent_id_number": "11010519491231002X",
    "agent_mobile": "13600000000",
    "agent_email": "agent@example.com",
    "delivery_method": "mail",
    "recipient_name": "李四",
    "recipient_phone": "13600000000",
    "shipping_address": "重庆市渝中区测试路1号",
}
