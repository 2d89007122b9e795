from django.contrib import admin
from django.urls import path

from . import views

urlpatterns = [
    path('admin/', admin.site.urls),
    path('urls/', views.urls, name='urls'),
    path('upload/', views.upload, name='upload'),
    path('items/<int:pk>/', views.urls, name='item'),
]
