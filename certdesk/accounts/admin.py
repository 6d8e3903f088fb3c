from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from certdesk.accounts.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ("-date_joined",)
    list_display = ("mobile", "name", "email", "is_staff", "is_active", "date_joined")
    search_fields = ("mobile", "name", "email")
    fieldsets = (
        (None, {"fields": ("mobile", "password")}),
        ("资料", {"fields": ("name", "email")}),
        ("权限", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("时间", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("mobile", "password1", "password2")}),)
