-- Argo CD health of vctp.io/AggregationJob (argocd-cm key
-- resource.customizations.health.vctp.io_AggregationJob). Lua 5.1, as Argo CD runs it.
-- One run: Pending and Running are Progressing, Succeeded Healthy, Failed (or an invalid
-- spec, which fails at once) Degraded.
local hs = {}
local status = obj.status or {}
local phase = status.phase
if phase == "Succeeded" then
  hs.status = "Healthy"
elseif phase == "Failed" then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
hs.message = status.message or ("phase " .. (phase or "Pending"))
return hs
