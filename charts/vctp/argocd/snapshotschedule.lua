-- Argo CD health of vctp.io/SnapshotSchedule (argocd-cm key
-- resource.customizations.health.vctp.io_SnapshotSchedule). Lua 5.1, as Argo CD runs it.
-- Ready says the schedule is valid and scheduling; LastTickSucceeded is the last finished
-- tick's result, Unknown before the first, so a new schedule is Progressing, not Degraded.
local hs = {}
local function condition(type)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end
local function said(c)
  return c.reason .. ": " .. (c.message or "")
end
if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "spec.suspend is true: new ticks are skipped"
  return hs
end
local ready = condition("Ready")
local generation = obj.metadata.generation
if ready == nil or (generation ~= nil and obj.status.observedGeneration ~= generation) then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to check this generation of the schedule"
  return hs
end
if ready.status ~= "True" then
  hs.status = "Degraded"
  hs.message = said(ready)
  return hs
end
local last = condition("LastTickSucceeded")
if last == nil or last.status == "Unknown" then
  hs.status = "Progressing"
  hs.message = "no tick has finished yet; " .. ready.message
  return hs
end
if last.status == "False" then
  hs.status = "Degraded"
  hs.message = said(last)
  return hs
end
hs.status = "Healthy"
hs.message = last.message
return hs
