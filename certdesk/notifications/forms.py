from django import forms


class PreferenceForm(forms.Form):
    sms_enabled = forms.BooleanField(label="短信", required=False)
    email_enabled = forms.BooleanField(label="电子邮件", required=False)
    wechat_enabled = forms.BooleanField(label="微信公众号", required=False)
