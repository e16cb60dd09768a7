"""A FastAPI app served by pounce: JSON, path and query parameters, a JSON body, a form."""

from typing import Optional

from fastapi import FastAPI, Form
from pydantic import BaseModel

app = FastAPI(title="pounce example")


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


@app.get("/")
async def root():
    return {"hello": "fastapi"}


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: Optional[str] = None):
    return {"item_id": item_id, "q": q}


@app.post("/items")
async def create_item(item: Item):
    return {"created": item.dict(), "total": round(item.price * 1.2, 2)}


@app.post("/login")
async def login(username: str = Form(...), password: str = Form(...)):
    return {"user": username, "password_length": len(password)}
