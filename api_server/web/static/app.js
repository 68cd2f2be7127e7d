// kubelabel's labeling app: sign in, pick a project, label, review, manage. Plain JavaScript over
// the public HTTP API (the calls Label Studio's SDK makes); Label Studio's editor is reached only
// through editor.js. Views are chosen by the URL's hash: #/login, #/projects, #/p/<id>/label,
// #/p/<id>/rework/<task>/<annotation>, #/p/<id>/review, #/p/<id>/manage.
"use strict";

const RANK = { viewer: 0, annotator: 1, reviewer: 2, manager: 3, admin: 4 };
const session = { me: null, csrf: "" };
const $ = (id) => document.getElementById(id);

// h("button", {class: "x", onclick}, "text", child, ...): a DOM element; text is never parsed as HTML.
function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(key, value === true ? "" : value);
  }
  element.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return element;
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

async function api(method, path, body, options = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") headers["X-CSRFToken"] = session.csrf;
  let payload = body;
  if (body !== undefined && !(body instanceof FormData)) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(path, { method, headers, body: payload, credentials: "same-origin", keepalive: options.keepalive });
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401 && !options.signingIn) {
      session.me = null;
      location.hash = "#/login";
    }
    throw new ApiError(response.status, data);
  }
  return data;
}

function say(text, kind = "") {
  $("message").textContent = text;
  $("message").className = kind;
}

function errorText(error) {
  const details = Object.entries(error.body && error.body.validation_errors ? error.body.validation_errors : {});
  // One line per field or row when the API names them (its detail repeats them in one line).
  if (!details.length) return error.message;
  return details.map(([where, msgs]) => `${where}: ${[].concat(msgs).join("; ")}`).join("\n");
}

// -- session ------------------------------------------------------------------------------------

async function whoami() {
  if (!session.me) {
    // Who is signed in, and the session's CSRF token (kept in memory only, re-read on reload).
    const info = await api("GET", "/api/auth/session");
    session.me = info.user;
    session.csrf = info.csrf_token || "";
  }
  $("whoami").textContent = `${session.me.username} (${session.me.role})`;
  $("signout").hidden = false;
  return session.me;
}

function renderLogin(view) {
  $("whoami").textContent = "";
  $("signout").hidden = true;
  $("nav").replaceChildren();
  const form = h(
    "form",
    { id: "login", class: "card narrow", autocomplete: "on" },
    h("h1", {}, "Sign in"),
    h("label", {}, "Username", h("input", { id: "username", name: "username", autocomplete: "username", required: true })),
    h("label", {}, "Password", h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true })),
    h("button", { type: "submit" }, "Sign in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const answer = await api("POST", "/api/auth/login", { username: $("username").value, password: $("password").value }, { signingIn: true });
      session.me = answer.user;
      session.csrf = answer.csrf_token || "";
      say("");
      location.hash = "#/projects";
    } catch (error) {
      say(`Sign-in failed: ${error.message}`, "error");
    }
  });
  view.append(form);
  $("username").focus();
}

async function signOut() {
  try { await api("POST", "/api/auth/logout"); } catch (error) { /* the session is gone either way */ }
  session.me = null;
  session.csrf = "";
  window.KubelabelEditor.close();
  location.hash = "#/login";
}

// -- projects -----------------------------------------------------------------------------------

async function usernames(projectId) {
  // user id -> username, from the members list (task lists name annotators by id).
  const members = await api("GET", `/api/projects/${projectId}/members/`).catch(() => []);
  return new Map(members.map((m) => [m.user, m.username]));
}

async function roleIn(projectId) {
  const me = await whoami();
  if (me.role === "admin") return "admin";
  const members = await api("GET", `/api/projects/${projectId}/members/`);
  const mine = members.find((m) => m.user === me.id);
  return mine ? mine.role : "viewer";
}

function projectNav(project, role) {
  const links = [h("a", { href: "#/projects" }, "Projects"), h("span", { class: "title" }, project.title || `Project ${project.id}`)];
  if (RANK[role] >= RANK.annotator) links.push(h("a", { href: `#/p/${project.id}/label` }, "Label"));
  if (RANK[role] >= RANK.reviewer) links.push(h("a", { href: `#/p/${project.id}/review` }, "Review"));
  if (RANK[role] >= RANK.manager) links.push(h("a", { href: `#/p/${project.id}/manage` }, "Overview"));
  $("nav").replaceChildren(...links);
}

async function renderProjects(view) {
  await whoami();
  $("nav").replaceChildren(h("a", { href: "#/projects" }, "Projects"));
  const page = await api("GET", "/api/projects/?page_size=100");
  const roles = await Promise.all(page.results.map((p) => roleIn(p.id)));
  const rows = page.results.map((p, i) =>
    h(
      "tr",
      { dataset: { project: p.id } },
      h("td", {}, p.title || `Project ${p.id}`),
      h("td", {}, roles[i]),
      h("td", { class: "num" }, `${p.finished_task_number} / ${p.task_number}`),
      h(
        "td",
        { class: "links" },
        RANK[roles[i]] >= RANK.annotator && h("a", { href: `#/p/${p.id}/label` }, "Label"),
        RANK[roles[i]] >= RANK.reviewer && h("a", { href: `#/p/${p.id}/review` }, "Review"),
        RANK[roles[i]] >= RANK.manager && h("a", { href: `#/p/${p.id}/manage` }, "Overview"),
      ),
    ),
  );
  view.append(
    h("h1", {}, "Projects"),
    rows.length
      ? h("table", { id: "project-list" }, h("tr", {}, h("th", {}, "Project"), h("th", {}, "Your role"), h("th", {}, "Labeled"), h("th", {}, "")), rows)
      : h("p", {}, "You are not a member of any project yet."),
  );
}

// -- labeling -----------------------------------------------------------------------------------

function instructions(project) {
  if (!project.expert_instruction) return null;
  // Shown as text: instructions are the manager's words, not markup to run.
  return h("details", { id: "instructions", open: true }, h("summary", {}, "Instructions"), h("div", { class: "instruction-text" }, project.expert_instruction));
}

function configWarnings(project) {
  // Tags this editor cannot draw, named by the config validator (the editor would only say
  // "not registered"). Filled in when the answer comes; labeling does not wait for it.
  const box = h("ul", { id: "config-warnings", class: "warning", hidden: true });
  api("POST", "/api/projects/validate/", { label_config: project.label_config }).then((answer) => {
    box.replaceChildren(...(answer.warnings || []).map((w) => h("li", {}, w)));
    box.hidden = !box.children.length;
  }, () => {});
  return box;
}

// The project's tasks with their annotations, page by page (keyset: after=<last id>), at most
// TASK_SCAN_LIMIT of them: the views that summarise them run in the browser.
const TASK_SCAN_LIMIT = 5000;

async function scanTasks(projectId, query = "") {
  const tasks = [];
  let after = 0;
  while (tasks.length < TASK_SCAN_LIMIT) {
    const page = await api("GET", `/api/projects/${projectId}/tasks/?page_size=100&after=${after}${query}`);
    tasks.push(...page);
    if (page.length < 100) break;
    after = page[page.length - 1].id;
  }
  return tasks;
}

async function ownRejected(project) {
  // Annotators see only their own annotations in task lists; a rejected one waits for their rework.
  const tasks = await scanTasks(project.id, "&only_annotated=true");
  const out = [];
  for (const task of tasks) {
    for (const a of task.annotations || []) {
      if (a.completed_by === session.me.id && a.review_status === "rejected") out.push({ task, annotation: a });
    }
  }
  return out;
}

async function rejectionComment(taskId) {
  const history = await api("GET", `/api/tasks/${taskId}/history/`).catch(() => []);
  const last = [...history].reverse().find((t) => t.to_state === "rejected" || t.comment);
  return last && last.comment ? last.comment : "";
}

async function renderLabel(view, projectId) {
  const me = await whoami();
  const project = await api("GET", `/api/projects/${projectId}/`);
  const role = await roleIn(projectId);
  projectNav(project, role);
  const progress = h("p", { id: "progress" }, `${project.finished_task_number} of ${project.task_number} tasks labeled`);
  const rework = h("section", { id: "rework", hidden: true });
  const editorRoot = h("div", { id: "editor" });
  view.append(...[progress, configWarnings(project), instructions(project), rework, editorRoot].filter(Boolean));

  const returned = await ownRejected(project);
  if (returned.length) {
    rework.hidden = false;
    rework.append(
      h("h2", {}, "Returned to you for rework"),
      h("ul", {}, returned.map(({ task, annotation }) =>
        h("li", {}, h("a", { href: `#/p/${projectId}/rework/${task.id}/${annotation.id}` }, `Task ${task.id}`), " rejected by a reviewer"))),
    );
  }

  const showProgress = (fresh) => {
    progress.textContent = `${fresh.finished_task_number} of ${fresh.task_number} tasks labeled`;
  };
  let started = performance.now();
  const next = async () => {
    // Marks for bench/browser.py: from asking /next to the editor showing the task.
    performance.clearMarks("kubelabel:next");
    performance.mark("kubelabel:next");
    let task;
    try {
      task = await api("GET", `/api/projects/${projectId}/next`);
    } catch (error) {
      if (error.status !== 404) throw error;
      window.KubelabelEditor.close();
      showProgress(await api("GET", `/api/projects/${projectId}/`));
      editorRoot.replaceChildren(h("div", { id: "done", class: "card" }, h("h2", {}, "All done"), h("p", {}, "No more tasks for you in this project. Thank you!")));
      say("");
      return;
    }
    // The counts load beside the editor, not before it.
    api("GET", `/api/projects/${projectId}/`).then(showProgress, () => {});
    started = performance.now();
    const leadTime = () => (performance.now() - started) / 1000;
    const hooks = {
      submit: async (result) => {
        try {
          await api("POST", `/api/tasks/${task.id}/annotations/`, { result, lead_time: leadTime() });
          say(`Task ${task.id} submitted`);
          await next();
        } catch (error) { say(errorText(error), "error"); }
      },
      skip: async () => {
        try {
          await api("POST", `/api/tasks/${task.id}/skip/`, { lead_time: leadTime() });
          say(`Task ${task.id} skipped`);
          await next();
        } catch (error) { say(errorText(error), "error"); }
      },
      saveDraft: async (draftId, result) => {
        const body = { result, lead_time: leadTime() };
        const saved = draftId
          ? await api("PATCH", `/api/drafts/${draftId}/`, body, { keepalive: true })
          : await api("POST", `/api/tasks/${task.id}/drafts/`, body, { keepalive: true });
        $("draft-state").textContent = `Draft saved ${new Date().toLocaleTimeString()}`;
        return saved.id;
      },
    };
    editorRoot.dataset.task = task.id;
    editorRoot.dataset.ready = "";
    const editor = await window.KubelabelEditor.open(editorRoot, { config: project.label_config, task, user: me, mode: "label", hooks });
    editorRoot.prepend(h("p", { class: "task-head" }, `Task ${task.id}`, h("span", { id: "draft-state" }, task.drafts && task.drafts.length ? "Draft restored" : "")));
    editorRoot.dataset.ready = String(task.id);
    performance.measure("kubelabel:next-to-ready", "kubelabel:next");
    window.kubelabelPage = { task, editor };
  };
  await next();
}

async function renderRework(view, projectId, taskId, annotationId) {
  const me = await whoami();
  const project = await api("GET", `/api/projects/${projectId}/`);
  projectNav(project, await roleIn(projectId));
  const task = await api("GET", `/api/tasks/${taskId}/`);
  const annotation = await api("GET", `/api/annotations/${annotationId}/`);
  const comment = await rejectionComment(taskId);
  const editorRoot = h("div", { id: "editor" });
  view.append(
    ...[
      instructions(project),
      h("p", { class: "task-head" }, `Task ${taskId}: rework your rejected annotation and update it`),
      comment && h("blockquote", { id: "review-comment" }, comment),
      editorRoot,
    ].filter(Boolean),
  );
  const hooks = {
    update: async (id, result) => {
      try {
        await api("PATCH", `/api/annotations/${annotationId}/`, { result });
        say(`Annotation ${annotationId} updated: it awaits a new review`);
        location.hash = `#/p/${projectId}/label`;
      } catch (error) { say(errorText(error), "error"); }
    },
  };
  await window.KubelabelEditor.open(editorRoot, { config: project.label_config, task: { ...task, annotations: [annotation], drafts: [] }, user: me, mode: "rework", hooks, annotationId: annotation.id });
  editorRoot.dataset.ready = String(taskId);
}

// -- review -------------------------------------------------------------------------------------

async function awaitingReview(projectId) {
  const out = [];
  for (const task of await scanTasks(projectId, "&only_annotated=true")) {
    for (const a of task.annotations || []) {
      if (!a.was_cancelled && !a.review_status && ["completed", "accepted", "rejected"].includes(task.state)) out.push({ task, annotation: a });
    }
  }
  return out;
}

async function renderReview(view, projectId) {
  const me = await whoami();
  const project = await api("GET", `/api/projects/${projectId}/`);
  projectNav(project, await roleIn(projectId));
  const queue = (await awaitingReview(projectId)).filter((item) => item.annotation.completed_by !== me.id || me.role === "admin");
  const names = await usernames(projectId);
  const count = h("p", { id: "review-count" });
  const editorRoot = h("div", { id: "editor" });
  const comment = h("textarea", { id: "review-comment-input", placeholder: "Comment for the annotator", rows: 2 });
  const bar = h("div", { class: "actions", id: "review-actions" });
  view.append(h("h1", {}, "Review"), count, bar, editorRoot);

  const show = async (index) => {
    count.textContent = `${queue.length - index} annotations awaiting review`;
    if (index >= queue.length) {
      window.KubelabelEditor.close();
      bar.replaceChildren();
      editorRoot.replaceChildren(h("div", { id: "done", class: "card" }, h("h2", {}, "Nothing to review"), h("p", {}, "Every submitted annotation has been reviewed.")));
      return;
    }
    const { task, annotation } = queue[index];
    const decide = async (accepted) => {
      try {
        await api("POST", `/api/annotations/${annotation.id}/review/`, { accepted, comment: comment.value });
        say(`Annotation ${annotation.id} ${accepted ? "accepted" : "rejected"}`);
        comment.value = "";
        await show(index + 1);
      } catch (error) { say(errorText(error), "error"); }
    };
    bar.replaceChildren(
      h("span", { class: "who" }, `Task ${task.id}, annotated by ${names.get(annotation.completed_by) || annotation.created_username || `user ${annotation.completed_by}`}`),
      comment,
      h("button", { id: "accept", type: "button", onclick: () => decide(true) }, "Accept"),
      h("button", { id: "reject", type: "button", class: "danger", onclick: () => decide(false) }, "Reject"),
    );
    editorRoot.dataset.ready = "";
    await window.KubelabelEditor.open(editorRoot, { config: project.label_config, task: { ...task, drafts: [] }, user: me, mode: "review", hooks: {}, annotationId: annotation.id });
    editorRoot.dataset.ready = String(task.id);
  };
  await show(0);
}

// -- manager's overview -------------------------------------------------------------------------


// What an annotation says, in a form two annotators' work can be compared by: the labels and
// values of its results, ignoring region ids and order.
function resultKey(annotation) {
  return JSON.stringify(
    (annotation.result || [])
      .map((r) => JSON.stringify([r.from_name, r.to_name, r.type, Object.keys(r.value || {}).sort().map((k) => [k, r.value[k]])]))
      .sort(),
  );
}

function annotatorStats(tasks, names) {
  const people = new Map();
  const person = (a) => {
    const name = names.get(a.completed_by) || a.created_username || `user ${a.completed_by}`;
    if (!people.has(name)) people.set(name, { name, submitted: 0, skipped: 0, accepted: 0, rejected: 0, pairs: 0, agreed: 0 });
    return people.get(name);
  };
  for (const task of tasks) {
    const counted = [];
    for (const a of task.annotations || []) {
      const p = person(a);
      if (a.was_cancelled) { p.skipped += 1; continue; }
      p.submitted += 1;
      if (a.review_status === "accepted") p.accepted += 1;
      if (a.review_status === "rejected") p.rejected += 1;
      else counted.push(a);
    }
    // Agreement: of the pairs of annotations on one task, the share with the same result.
    for (let i = 0; i < counted.length; i++) {
      for (let j = i + 1; j < counted.length; j++) {
        const same = resultKey(counted[i]) === resultKey(counted[j]) ? 1 : 0;
        for (const a of [counted[i], counted[j]]) { const p = person(a); p.pairs += 1; p.agreed += same; }
      }
    }
  }
  return [...people.values()].sort((a, b) => a.name.localeCompare(b.name));
}

async function renderManage(view, projectId) {
  await whoami();
  const project = await api("GET", `/api/projects/${projectId}/`);
  projectNav(project, await roleIn(projectId));
  const tasks = await scanTasks(projectId);
  const states = {};
  for (const t of tasks) states[t.state] = (states[t.state] || 0) + 1;
  const overlap = project.maximum_annotations > 1;
  const people = annotatorStats(tasks, await usernames(projectId));
  const partial = tasks.length >= TASK_SCAN_LIMIT ? ` (counted over the first ${TASK_SCAN_LIMIT} tasks)` : "";

  const progress = h(
    "section",
    { id: "progress-counts", class: "card" },
    h("h2", {}, "Progress"),
    h(
      "dl",
      {},
      h("dt", {}, "Tasks"), h("dd", { dataset: { count: "total" } }, String(project.task_number)),
      h("dt", {}, "Done"), h("dd", { dataset: { count: "done" } }, String(project.finished_task_number)),
      h("dt", {}, "In review"), h("dd", { dataset: { count: "review" } }, String(states.completed || 0)),
      h("dt", {}, "Skipped"), h("dd", { dataset: { count: "skipped" } }, String(states.skipped || 0)),
      h("dt", {}, "Rejected"), h("dd", { dataset: { count: "rejected" } }, String(states.rejected || 0)),
    ),
    partial && h("p", { class: "note" }, partial),
  );

  const annotators = h(
    "section",
    { id: "annotators", class: "card" },
    h("h2", {}, "Annotators"),
    h(
      "table",
      {},
      h("tr", {}, ["Annotator", "Submitted", "Skipped", "Accepted", "Rejected", overlap ? "Agreement" : null].filter(Boolean).map((t) => h("th", {}, t))),
      people.map((p) =>
        h(
          "tr",
          { dataset: { annotator: p.name } },
          h("td", {}, p.name),
          [p.submitted, p.skipped, p.accepted, p.rejected].map((n) => h("td", { class: "num" }, String(n))),
          overlap ? h("td", { class: "num" }, p.pairs ? `${Math.round((100 * p.agreed) / p.pairs)}% of ${p.pairs}` : "-") : null,
        ),
      ),
    ),
  );

  const importResult = h("pre", { id: "import-result", role: "status" });
  const files = h("input", { id: "import-files", type: "file", multiple: true });
  const url = h("input", { id: "import-url", type: "url", placeholder: "https://example.com/tasks.json" });
  const importForm = h(
    "form",
    { id: "import", class: "card" },
    h("h2", {}, "Import tasks"),
    h("label", {}, "Files (JSON, JSONL, CSV, TSV, TXT)", files),
    h("label", {}, "or a URL", url),
    h("button", { type: "submit" }, "Import"),
    h("progress", { id: "import-progress", hidden: true }),
    importResult,
  );
  importForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData();
    for (const file of files.files) form.append("file", file, file.name);
    if (url.value.trim()) form.append("url", url.value.trim());
    $("import-progress").hidden = false;
    importResult.className = "";
    importResult.textContent = "Importing...";
    try {
      const answer = await api("POST", `/api/projects/${projectId}/import`, form);
      importResult.textContent = `Imported ${answer.task_count} tasks`;
    } catch (error) {
      importResult.className = "error";
      importResult.textContent = errorText(error);
    } finally {
      $("import-progress").hidden = true;
    }
  });

  const formats = await api("GET", `/api/projects/${projectId}/export/formats`).catch(() => []);
  const exportList = h(
    "section",
    { id: "export", class: "card" },
    h("h2", {}, "Export"),
    h("p", {}, "Each format is a streamed download of the project's annotations."),
    h(
      "ul",
      {},
      formats.map((f) => {
        const name = typeof f === "string" ? f : f.name;
        const usable = typeof f === "string" || !f.disabled;
        return h("li", {}, usable
          ? h("a", { href: `/api/projects/${projectId}/export?exportType=${encodeURIComponent(name)}`, download: "", dataset: { format: name } }, (f && f.title) || name)
          : h("span", { class: "disabled" }, `${(f && f.title) || name} (does not fit this config)`));
      }),
    ),
  );

  const members = await api("GET", `/api/projects/${projectId}/members/`);
  const roleSelect = (member) => {
    const select = h("select", { dataset: { user: member.user } }, ["manager", "reviewer", "annotator", "viewer"].map((r) => h("option", { value: r, selected: r === member.role }, r)));
    select.addEventListener("change", async () => {
      try {
        await api("PATCH", `/api/projects/${projectId}/members/${member.user}/`, { role: select.value });
        say(`${member.username} is now ${select.value}`);
      } catch (error) { say(errorText(error), "error"); select.value = member.role; }
    });
    return select;
  };
  const newUser = h("input", { id: "member-user", placeholder: "user id", inputmode: "numeric", size: 8 });
  const newRole = h("select", { id: "member-role" }, ["annotator", "reviewer", "manager", "viewer"].map((r) => h("option", { value: r }, r)));
  const membersSection = h(
    "section",
    { id: "members", class: "card" },
    h("h2", {}, "Members"),
    h("table", {}, members.map((m) => h("tr", { dataset: { member: m.username } }, h("td", {}, m.username), h("td", {}, roleSelect(m))))),
    h(
      "form",
      { id: "add-member", onsubmit: async (event) => {
        event.preventDefault();
        try {
          await api("POST", `/api/projects/${projectId}/members/`, { user: Number(newUser.value), role: newRole.value });
          route();
        } catch (error) { say(errorText(error), "error"); }
      } },
      newUser, newRole, h("button", { type: "submit" }, "Add member"),
    ),
  );

  view.append(h("h1", {}, "Overview"), progress, annotators, importForm, exportList, membersSection);
}

// -- routing ------------------------------------------------------------------------------------

async function route() {
  const view = $("view");
  window.kubelabelPage = null;
  window.KubelabelEditor.close();
  view.replaceChildren();
  say("");
  const parts = (location.hash.replace(/^#\/?/, "") || "projects").split("/");
  try {
    if (parts[0] === "login") return renderLogin(view);
    if (parts[0] === "p" && parts[2] === "label") return await renderLabel(view, Number(parts[1]));
    if (parts[0] === "p" && parts[2] === "rework") return await renderRework(view, Number(parts[1]), Number(parts[3]), Number(parts[4]));
    if (parts[0] === "p" && parts[2] === "review") return await renderReview(view, Number(parts[1]));
    if (parts[0] === "p" && parts[2] === "manage") return await renderManage(view, Number(parts[1]));
    return await renderProjects(view);
  } catch (error) {
    if (error.status === 401) return undefined;
    say(errorText(error), "error");
    return undefined;
  }
}

window.addEventListener("hashchange", route);
// A pending draft is saved before the page goes (keepalive lets the request outlive it).
window.addEventListener("pagehide", () => window.kubelabelPage && window.kubelabelPage.editor.flushDraft());
document.addEventListener("DOMContentLoaded", () => {
  $("signout").addEventListener("click", signOut);
  route();
});
