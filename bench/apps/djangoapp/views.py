from django.http import JsonResponse

from .models import Item


def items(request):
    rows = list(Item.objects.order_by("id").values("id", "name", "price", "stock")[:20])
    return JsonResponse({"items": rows})
