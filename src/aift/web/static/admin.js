// Admin page: add users (initial password or invite link), change roles, disable or
// enable, new links; groups; the audit trail, filtered.
"use strict";

function when(value) {
  return value ? new Date(value).toLocaleString() : "–";
}

function button(text, label, action) {
  const b = el("button", text, "secondary small");
  b.type = "button";
  b.setAttribute("aria-label", label);
  b.addEventListener("click", () => action().catch((err) => toast(err.message)));
  return b;
}

async function loadUsers() {
  const users = await api("/api/v1/admin/users");
  document.querySelector("#user-table tbody").replaceChildren(...users.map((u) => {
    const tr = el("tr");
    const role = el("select");
    role.setAttribute("aria-label", `Role of ${u.email}`);
    for (const r of ["admin", "member", "viewer"]) {
      const option = el("option", r);
      option.selected = r === u.role;
      role.append(option);
    }
    role.addEventListener("change", () => api(`/api/v1/admin/users/${u.id}`, {
      method: "PATCH", body: JSON.stringify({ role: role.value }),
    }).then(() => toast(`${u.email} is now ${role.value}.`)).catch((err) => { toast(err.message); loadUsers(); }));
    const roleCell = el("td");
    roleCell.append(role);
    const state = u.disabled ? "disabled" : (u.has_password ? (u.must_change_password ? "must change password" : "active") : "invited");
    const actions = el("td", undefined, "actions");
    actions.append(button(u.disabled ? "Enable" : "Disable", `${u.disabled ? "Enable" : "Disable"} ${u.email}`, async () => {
      await api(`/api/v1/admin/users/${u.id}`, { method: "PATCH", body: JSON.stringify({ disabled: !u.disabled }) });
      loadUsers();
    }));
    actions.append(button("New link", `New password link for ${u.email}`, async () => {
      const made = await api(`/api/v1/admin/users/${u.id}/link`, { method: "POST" });
      showLink(u.email, made.link);
    }));
    tr.append(el("td", u.email), roleCell, el("td", state), el("td", when(u.last_login_at)), actions);
    return tr;
  }));
}

function showLink(email, link) {
  const box = document.getElementById("user-link");
  box.hidden = false;
  box.replaceChildren(el("span", `One-time link for ${email} (valid 7 days): `), el("code", link));
}

async function loadGroups() {
  const groups = await api("/api/v1/admin/groups");
  document.getElementById("group-list").replaceChildren(...groups.map((g) => {
    const item = el("li", `${g.name} (${g.members.length} members) `);
    item.append(button("Delete", `Delete group ${g.name}`, async () => {
      await api(`/api/v1/admin/groups/${g.id}`, { method: "DELETE" });
      loadGroups();
    }));
    return item;
  }));
}

async function loadAudit() {
  const form = document.getElementById("audit-form");
  const query = new URLSearchParams({ limit: "200" });
  if (form.actor.value.trim()) query.set("actor", form.actor.value.trim());
  if (form.action.value.trim()) query.set("action", form.action.value.trim());
  const events = await api(`/api/v1/admin/audit?${query}`);
  document.querySelector("#audit-table tbody").replaceChildren(...events.map((e) => {
    const tr = el("tr");
    tr.append(el("td", when(e.at)), el("td", e.actor), el("td", e.action), el("td", e.target),
      el("td", String(e.status)), el("td", e.client), el("td", e.request_id));
    return tr;
  }));
}

document.getElementById("user-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const error = document.getElementById("user-error");
  error.textContent = "";
  try {
    const made = await api("/api/v1/admin/users", {
      method: "POST",
      body: JSON.stringify({ email: form.email.value, role: form.role.value, password: form.password.value || null }),
    });
    if (made.link) showLink(made.user.email, made.link);
    else toast(`${made.user.email} added; the password must change at the first sign-in.`);
    form.reset();
    loadUsers();
    loadAudit();
  } catch (err) {
    error.textContent = err.message;
  }
});

document.getElementById("group-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  await api("/api/v1/admin/groups", { method: "POST", body: JSON.stringify({ name: event.target.name.value }) })
    .then(() => { event.target.reset(); loadGroups(); }).catch((err) => toast(err.message));
});

document.getElementById("audit-form").addEventListener("submit", (event) => {
  event.preventDefault();
  loadAudit().catch((err) => toast(err.message));
});

Promise.all([loadUsers(), loadGroups(), loadAudit()]).catch((err) => toast(err.message));
