// Account page: change the password, create (shown once), list and revoke API tokens,
// sign out everywhere.
"use strict";

function when(value) {
  return value ? new Date(value).toLocaleString() : "–";
}

async function loadTokens() {
  const tokens = await api("/api/v1/account/tokens");
  document.querySelector("#token-table tbody").replaceChildren(...tokens.map((t) => {
    const tr = el("tr");
    tr.append(el("td", t.name), el("td", `${t.prefix}…`), el("td", t.scopes.join(", ")), el("td", when(t.created_at)),
      el("td", when(t.expires_at)), el("td", when(t.last_used_at)));
    const actions = el("td");
    if (t.revoked_at) actions.append(el("span", "revoked", "muted"));
    else {
      const revoke = el("button", "Revoke", "secondary small");
      revoke.type = "button";
      revoke.setAttribute("aria-label", `Revoke ${t.name}`);
      revoke.addEventListener("click", async () => {
        await api(`/api/v1/account/tokens/${t.id}`, { method: "DELETE" });
        toast(`Token ${t.name} revoked.`);
        loadTokens();
      });
      actions.append(revoke);
    }
    tr.append(actions);
    return tr;
  }));
}

document.getElementById("password-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const error = document.getElementById("password-error");
  error.textContent = "";
  try {
    await api("/api/v1/account/password", {
      method: "POST", body: JSON.stringify({ current: form.current.value, new: form.new.value }),
    });
    location.href = "/login";
  } catch (err) {
    error.textContent = err.message;
  }
});

document.getElementById("token-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const error = document.getElementById("token-error");
  error.textContent = "";
  const scopes = [...form.querySelectorAll("input[name=scopes]:checked")].map((s) => s.value);
  try {
    const made = await api("/api/v1/account/tokens", {
      method: "POST",
      body: JSON.stringify({ name: form.name.value, scopes, expires_days: form.days.value ? Number(form.days.value) : null }),
    });
    const shown = document.getElementById("token-new");
    shown.hidden = false;
    shown.replaceChildren(el("span", "Copy it now, it is not shown again: "), el("code", made.token));
    form.reset();
    loadTokens();
  } catch (err) {
    error.textContent = err.message;
  }
});

document.getElementById("logout-everywhere").addEventListener("click", async () => {
  await api("/api/v1/account/logout-everywhere", { method: "POST" });
  location.href = "/login";
});

loadTokens().catch((err) => toast(err.message));
