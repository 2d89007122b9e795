# Makes djangoapp/bench.sqlite3 with the Item table and 20 rows:
#   /usr/bin/python3 djangoapp/mkdb.py   (from the directory of real.wsgi)
import os
import sys
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djangoapp.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from djangoapp.models import Item  # noqa: E402

if os.path.exists(settings.DATABASES["default"]["NAME"]):
    os.remove(settings.DATABASES["default"]["NAME"])
with connection.schema_editor() as editor:
    editor.create_model(Item)
Item.objects.bulk_create(Item(name="item %d" % i, price=Decimal(i) * Decimal("1.25"), stock=i % 7)
                         for i in range(1, 21))
print(Item.objects.count())
