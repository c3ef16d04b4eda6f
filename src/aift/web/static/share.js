// The Sharing panel of an owned resource (a knowledge base, a dataset, a model): who has
// it, share with a user or a group to read or write, stop sharing. A page with one
// resource names its shares API in the panel's data-url; a list (models) points the
// panel at a row's resource with showSharing(url, name).
"use strict";

const sharing = document.getElementById("sharing");

async function loadShares() {
  const shares = await api(sharing.dataset.url);
  document.getElementById("share-list").replaceChildren(...shares.map((s) => {
    const item = el("li", `${s.grantee} (${s.grantee_type}): ${s.access} `);
    const stop = el("button", "Stop sharing", "secondary small");
    stop.type = "button";
    stop.setAttribute("aria-label", `Stop sharing with ${s.grantee}`);
    stop.addEventListener("click", async () => {
      await api(`${sharing.dataset.url}/${s.grantee_type}/${s.grantee_id}`, { method: "DELETE" }).catch((err) => toast(err.message));
      loadShares();
    });
    item.append(stop);
    return item;
  }));
}

document.getElementById("share-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const error = document.getElementById("share-error");
  error.textContent = "";
  try {
    await api(sharing.dataset.url, {
      method: "PUT",
      body: JSON.stringify({ grantee: form.grantee.value, kind: form.kind.value, access: form.access.value }),
    });
    form.reset();
    loadShares();
  } catch (err) {
    error.textContent = err.message;
  }
});

// Point the panel at another resource and show its shares.
window.showSharing = (url, name) => {
  sharing.dataset.url = url;
  document.getElementById("sharing-name").textContent = name;
  document.getElementById("share-error").textContent = "";
  return loadShares();
};

if (sharing.dataset.url) loadShares().catch((err) => toast(err.message));
