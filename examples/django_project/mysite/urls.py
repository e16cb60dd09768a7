from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


def home(request):
    return JsonResponse({"hello": "django", "method": request.method, "path": request.path})


def greet(request, name):
    return HttpResponse(f"Hello, {name}!", content_type="text/plain")


@csrf_exempt
def echo(request):
    return HttpResponse(request.body, content_type="application/octet-stream")


urlpatterns = [
    path("", home),
    path("greet/<str:name>/", greet),
    path("echo/", echo),
]
