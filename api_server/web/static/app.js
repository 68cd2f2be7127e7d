// kubelabel's annotation page: sign in with an API token, pick a project, label the next task.
// It only uses the public HTTP API (the same calls as Label Studio's SDK).
"use strict";

const state = { token: localStorage.getItem("kubelabel.token") || "", project: null, task: null, started: 0 };
const $ = (id) => document.getElementById(id);

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { "Authorization": `Token ${state.token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error((data && data.detail) || `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return data;
}

function say(text, isError = false) {
  $("message").textContent = text;
  $("message").className = isError ? "error" : "";
}

async function signIn(event) {
  if (event) event.preventDefault();
  state.token = $("token").value.trim() || state.token;
  try {
    const me = await api("GET", "/api/current-user/whoami");
    localStorage.setItem("kubelabel.token", state.token);
    $("whoami").textContent = `${me.username} (${me.role})`;
    await loadProjects();
  } catch (error) {
    say(`Sign-in failed: ${error.message}`, true);
  }
}

async function loadProjects() {
  const page = await api("GET", "/api/projects/?page_size=100");
  const select = $("project");
  select.replaceChildren(...page.results.map((p) => new Option(p.title || `Project ${p.id}`, p.id)));
  $("projects").hidden = false;
  if (page.results.length === 0) { say("No projects yet: create one through the API."); return; }
  await chooseProject();
}

async function chooseProject() {
  state.project = await api("GET", `/api/projects/${$("project").value}/`);
  $("instructions").textContent = state.project.expert_instruction || "";
  $("instructions").hidden = !state.project.expert_instruction;
  showProgress();
  await nextTask();
}

function showProgress() {
  const p = state.project;
  $("progress").textContent = `${p.finished_task_number} of ${p.task_number} tasks labeled`;
}

function renderObject(input, data) {
  const value = data[input.value];
  const box = document.createElement("div");
  if (input.type === "Image") {
    const img = document.createElement("img");
    img.src = value; img.alt = input.value;
    box.append(img);
  } else {
    const pre = document.createElement("pre");
    pre.textContent = typeof value === "string" ? value : JSON.stringify(value, null, 2);
    box.append(pre);
  }
  return box;
}

function renderControl(name, control) {
  const fieldset = document.createElement("fieldset");
  fieldset.dataset.name = name;
  fieldset.dataset.type = control.type;
  fieldset.dataset.toName = control.to_name[0];
  const legend = document.createElement("legend");
  legend.textContent = name;
  fieldset.append(legend);
  if (control.type === "Choices") {
    for (const label of control.labels) {
      const wrap = document.createElement("label");
      const input = document.createElement("input");
      input.type = "checkbox"; input.value = label; input.name = name;
      wrap.append(input, ` ${label}`);
      fieldset.append(wrap);
    }
  } else if (control.type === "TextArea") {
    fieldset.append(document.createElement("textarea"));
  } else if (control.type === "Rating") {
    const input = document.createElement("input");
    input.type = "number"; input.min = 1; input.max = 5;
    fieldset.append(input);
  } else {
    const note = document.createElement("em");
    note.textContent = `${control.type} is labeled through the API or Label Studio's editor.`;
    fieldset.append(note);
  }
  return fieldset;
}

async function nextTask() {
  $("task").hidden = true;
  try {
    state.task = await api("GET", `/api/projects/${state.project.id}/next`);
  } catch (error) {
    say(error.status === 404 ? "No more tasks for you in this project. Thank you!" : error.message, error.status !== 404);
    return;
  }
  const controls = state.project.parsed_label_config;
  const inputs = new Map();
  for (const control of Object.values(controls)) for (const input of control.inputs) inputs.set(input.value, input);
  $("objects").replaceChildren(...[...inputs.values()].map((input) => renderObject(input, state.task.data)));
  $("controls").replaceChildren(...Object.entries(controls).map(([name, c]) => renderControl(name, c)));
  $("task").hidden = false;
  state.started = performance.now();
  say(`Task ${state.task.id}`);
}

function collectResult() {
  const result = [];
  for (const fieldset of $("controls").querySelectorAll("fieldset")) {
    const item = { from_name: fieldset.dataset.name, to_name: fieldset.dataset.toName, type: fieldset.dataset.type.toLowerCase() };
    if (item.type === "choices") {
      const choices = [...fieldset.querySelectorAll("input:checked")].map((i) => i.value);
      if (choices.length) result.push({ ...item, value: { choices } });
    } else if (item.type === "textarea") {
      const text = fieldset.querySelector("textarea").value.trim();
      if (text) result.push({ ...item, value: { text: [text] } });
    } else if (item.type === "rating") {
      const rating = Number(fieldset.querySelector("input").value);
      if (rating) result.push({ ...item, value: { rating } });
    }
  }
  return result;
}

async function submit(skip) {
  const body = { result: skip ? [] : collectResult(), lead_time: (performance.now() - state.started) / 1000 };
  if (skip) body.was_cancelled = true;
  try {
    await api("POST", `/api/tasks/${state.task.id}/annotations/`, body);
    state.project = await api("GET", `/api/projects/${state.project.id}/`);
    showProgress();
    await nextTask();
  } catch (error) {
    say(error.message, true);
  }
}

$("login").addEventListener("submit", signIn);
$("project").addEventListener("change", chooseProject);
$("submit").addEventListener("click", () => submit(false));
$("skip").addEventListener("click", () => submit(true));
if (state.token) signIn();
