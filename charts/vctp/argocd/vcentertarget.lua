-- Argo CD health of vctp.io/VCenterTarget (argocd-cm key
-- resource.customizations.health.vctp.io_VCenterTarget). Lua 5.1, as Argo CD runs it.
-- Ready: the spec is valid, the Secret and CA bundle are there and the vCenter accepted the
-- account (checked again every --recheck-seconds).
local hs = {}
local ready = nil
if obj.status ~= nil and obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Ready" then
      ready = c
    end
  end
end
local generation = obj.metadata.generation
if ready == nil or (generation ~= nil and obj.status.observedGeneration ~= generation) then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to check this generation of the target"
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
else
  hs.status = "Degraded"
end
hs.message = ready.reason .. ": " .. (ready.message or "")
return hs
