// Fills the item list on the example page from /data.json.
"use strict";

async function loadItems() {
  const response = await fetch("/data.json");
  if (!response.ok) {
    throw new Error(`GET /data.json: ${response.status}`);
  }
  return response.json();
}

function render(items) {
  const list = document.getElementById("items");
  for (const item of items) {
    const li = document.createElement("li");
    li.textContent = `${item.name}: ${item.description}`;
    list.appendChild(li);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  loadItems()
    .then((data) => render(data.items))
    .catch((error) => {
      const list = document.getElementById("items");
      list.textContent = `could not load the items (${error.message})`;
    });
});
