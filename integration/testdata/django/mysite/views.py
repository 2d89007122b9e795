import hashlib

from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse
from django.middleware.csrf import get_token
from django.templatetags.static import static
from django.urls import get_script_prefix, reverse
from django.views.decorators.http import require_http_methods


def urls(request, pk=None):
    """The URLs Django generates: all must carry the mount (SCRIPT_NAME)."""
    return JsonResponse({
        'script_name': request.META.get('SCRIPT_NAME'),
        'path_info': request.path_info,
        'path': request.path,
        'script_prefix': get_script_prefix(),
        'admin_index': reverse('admin:index'),
        'admin_login': reverse('admin:login'),
        'upload': reverse('upload'),
        'item': reverse('item', args=[42]),
        'absolute': request.build_absolute_uri(reverse('urls')),
        'static': static('admin/css/base.css'),
    })


@require_http_methods(['GET', 'POST'])
def upload(request):
    """GET: a form (and the csrftoken cookie). POST: sha256 of the uploaded file."""
    if request.method == 'GET':
        token = get_token(request)
        return HttpResponse(
            '<form method="post" enctype="multipart/form-data" action="%s">'
            '<input type="hidden" name="csrfmiddlewaretoken" value="%s">'
            '<input type="file" name="file"><input type="submit"></form>'
            % (request.path, token))
    f = request.FILES.get('file')
    if f is None:
        return HttpResponseBadRequest('no file')
    h = hashlib.sha256()
    for chunk in f.chunks():
        h.update(chunk)
    return JsonResponse({
        'name': f.name,
        'size': f.size,
        'sha256': h.hexdigest(),
        'note': request.POST.get('note', ''),
        'on_disk': hasattr(f, 'temporary_file_path'),
    })
