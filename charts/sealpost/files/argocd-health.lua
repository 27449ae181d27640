-- Argo CD health of a Sealpost object (MailRelay, MailDomainPolicy, RelayCredential), from the
-- status the operator writes: see docs/argocd.md for where it goes. Plain Lua 5.1 (Argo CD's).
--   Progressing  the operator has not processed the latest spec (observedGeneration), the object is
--                waiting (pods starting, certificate being issued, policy loading), or a MailRelay's
--                deletion waits for its queues (Deleting)
--   Degraded     the spec or a reference is wrong (Accepted=False), or a MailRelay runs with a problem
--                (Degraded=True: policies left out, config too large, orphaned queue volumes)
--   Healthy      Ready=True
local hs = { status = "Progressing", message = "Waiting for the Sealpost operator" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.message = "Waiting for the Sealpost operator to process generation " .. tostring(generation)
  return hs
end
local by = {}
for _, c in ipairs(obj.status.conditions) do
  by[c.type] = c
end
if by.Deleting ~= nil and by.Deleting.status == "True" then
  hs.message = by.Deleting.message
  return hs
end
if by.Accepted ~= nil and by.Accepted.status == "False" then
  hs.status = "Degraded"
  hs.message = by.Accepted.message
  return hs
end
if by.Degraded ~= nil and by.Degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = by.Degraded.message
  return hs
end
if by.Ready ~= nil then
  if by.Ready.status == "True" then
    hs.status = "Healthy"
  end
  hs.message = by.Ready.message
end
return hs
