-- Argo CD health of vctp.io/MetricsExport (argocd-cm key
-- resource.customizations.health.vctp.io_MetricsExport). Lua 5.1, as Argo CD runs it.
-- The latest run: Suspended while spec.suspend, Healthy once its bundle is written, Degraded
-- when it failed or cannot start (Ready False: a missing Secret, an invalid spec),
-- Progressing otherwise.
local hs = {}
local status = obj.status or {}
local ready = nil
for _, c in ipairs(status.conditions or {}) do
  if c.type == "Ready" then
    ready = c
  end
end
local errors = status.errors or {}
local last_error = errors[#errors]
if (obj.spec ~= nil and obj.spec.suspend == true) or status.phase == "Suspended" then
  hs.status = "Suspended"
  hs.message = "spec.suspend is true: the run is stopped, its progress kept"
elseif status.phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = "run " .. (status.runId or "") .. " written"
elseif status.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = last_error or (ready and ready.message) or "the run failed"
elseif ready ~= nil and ready.status == "False" and status.phase ~= "Running" then
  hs.status = "Degraded"
  hs.message = ready.reason .. ": " .. (ready.message or "")
else
  hs.status = "Progressing"
  hs.message = "run " .. (status.runId or "not started yet") .. " is " .. (status.phase or "Pending")
end
return hs
