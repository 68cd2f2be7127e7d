// The one module that talks to Label Studio's editor (@heartexlabs/label-studio 1.4.0, vendored).
// The rest of the app sees plain results (Label Studio's result lists) and promises; what the
// editor needs (its store, its callbacks, its draft and prediction handling) stays in here.
"use strict";

(function () {
  let current = null; // one editor per page: it keeps global hotkeys and window.Htx

  const INTERFACES = {
    // Labeling: submit, skip, drafts; one annotation of the caller's own.
    label: ["panel", "submit", "skip", "controls", "infobar", "topbar", "side-column", "annotations:current", "edit-history"],
    // Reworking one's rejected annotation: update instead of submit.
    rework: ["panel", "update", "controls", "infobar", "topbar", "side-column", "annotations:current", "edit-history"],
    // A reviewer looks at one annotation; accepting or rejecting is the page's.
    review: ["infobar", "topbar", "side-column", "annotations:current"],
  };

  function close() {
    if (current) {
      try { current.destroy(); } catch (error) { console.warn("editor destroy", error); }
      current = null;
    }
  }

  // Ready means the task's images are there to draw on (or failed: the editor then says so).
  function mediaLoaded(root, timeoutMs = 15000) {
    const pending = [...root.querySelectorAll("img")].filter((img) => !img.complete);
    const each = pending.map((img) => new Promise((done) => {
      img.addEventListener("load", done, { once: true });
      img.addEventListener("error", done, { once: true });
    }));
    return Promise.race([Promise.all(each), new Promise((done) => setTimeout(done, timeoutMs))]);
  }

  // The editor's annotation -> a plain result list (regions in percent, as Label Studio stores them).
  function resultOf(annotation) {
    return annotation.serializeAnnotation();
  }

  // Opens the editor on `root` for `task` ({id, data, annotations, predictions, drafts} as the API
  // gives it). mode: label | rework | review. Resolves once the editor shows the task.
  // hooks: submit(result), update(annotationId, result), skip(), saveDraft(draftId|null, result) -> draft id.
  function open(root, { config, task, user, mode, hooks, annotationId }) {
    close();
    root.replaceChildren();
    const holder = document.createElement("div");
    root.append(holder);
    const own = (task.annotations || []).filter((a) => annotationId === undefined || a.id === annotationId);
    const draft = (task.drafts || []).find((d) => !d.annotation) || null;
    return new Promise((resolve, reject) => {
      const settings = {
        config,
        task: { id: task.id, data: task.data, annotations: mode === "label" ? [] : own, predictions: task.predictions || [] },
        interfaces: INTERFACES[mode],
        user: { pk: user.id, firstName: user.first_name || user.username, lastName: user.last_name || "" },
        onStorageInitialized(ls) {
          try {
            const store = ls.annotationStore;
            if (mode === "label") {
              let annotation;
              if (draft) {
                // A saved draft comes back as it was left (the editor ignores a task's `drafts` key).
                annotation = store.addAnnotation({ draft: draft.result, userGenerate: true });
                store.selectAnnotation(annotation.id);
                annotation.deserializeResults(draft.result);
                annotation.setDraftId(draft.id);
              } else if (store.predictions.length) {
                // The newest prediction becomes the starting point (a pre-annotation).
                annotation = store.addAnnotationFromPrediction(store.predictions[store.predictions.length - 1]);
                store.selectAnnotation(annotation.id);
              } else {
                annotation = store.addAnnotation({ userGenerate: true });
                store.selectAnnotation(annotation.id);
              }
            } else if (store.annotations.length) {
              store.selectAnnotation(store.annotations[0].id);
            }
            setTimeout(() => mediaLoaded(root).then(() => resolve(api)), 0);
          } catch (error) {
            reject(error);
          }
        },
        onSubmitAnnotation(ls, annotation) { return hooks.submit(resultOf(annotation)); },
        onUpdateAnnotation(ls, annotation) { return hooks.update(annotation.pk || annotationId, resultOf(annotation)); },
        onSkipTask() { return hooks.skip(); },
      };
      if (mode === "label" && hooks.saveDraft) {
        // Given this callback, the editor autosaves 5 s after the last change.
        settings.onSubmitDraft = async (ls, annotation) => {
          const id = await hooks.saveDraft(annotation.draftId || null, annotation.versions.draft || resultOf(annotation));
          if (id) annotation.setDraftId(id);
        };
      }
      const editor = new window.LabelStudio(holder, settings);
      current = editor;
      const api = {
        // The current result, as submitting would send it.
        result: () => resultOf(editor.store.annotationStore.selected),
        // Save the pending draft now (before leaving the page) instead of after the autosave delay.
        flushDraft: () => {
          const selected = editor.store && editor.store.annotationStore.selected;
          if (selected && selected.autosave && selected.autosave.flush) selected.autosave.flush();
        },
        submit: () => editor.store.submitAnnotation(),
        skip: () => editor.store.skipTask(),
        close,
      };
    });
  }

  window.KubelabelEditor = { open, close };
})();
