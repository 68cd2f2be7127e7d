-- Argo CD health check for every kubelabel.io kind (installed under the argocd-cm keys
-- resource.customizations.health.kubelabel.io_<Kind> by argocd-cm-health.yaml).
-- Health from the status conventions every kubelabel kind shares (status.observedGeneration and
-- Ready / Progressing / Degraded conditions, each with its own observedGeneration):
--   Degraded    Degraded=True, or Ready=False while nothing is progressing
--   Progressing no status yet, a stale observedGeneration, Progressing=True, or Ready not decided
--   Healthy     Ready=True for the current generation
local hs = {}

local function describe(c, fallback)
  if c.message ~= nil and c.message ~= "" then
    if c.reason ~= nil and c.reason ~= "" then
      return c.reason .. ": " .. c.message
    end
    return c.message
  end
  if c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile generation " .. string.format("%d", generation)
  return hs
end

local found = {}
for _, c in ipairs(obj.status.conditions) do
  -- A condition computed for an older generation says nothing about the current spec.
  local stale = generation ~= nil and c.observedGeneration ~= nil and c.observedGeneration < generation
  if c.type ~= nil and not stale then
    found[c.type] = c
  end
end

local ready, progressing, degraded = found["Ready"], found["Progressing"], found["Degraded"]

if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(degraded, "Degraded")
  return hs
end
if progressing ~= nil and progressing.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(progressing, "Progressing")
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "Ready")
  return hs
end
if ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(ready, "Not ready")
  return hs
end

hs.status = "Progressing"
hs.message = "Waiting for the Ready condition"
return hs
