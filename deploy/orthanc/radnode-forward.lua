-- Orthanc → radnode: push each stable study to radnode by STOW-RS (DICOMweb plugin, DicomWeb.Servers "radnode").
--
-- Orthanc fires OnStableStudy again, and re-sends the whole study, whenever anything new lands in it, radnode's
-- own results included (shared/notes/orthanc.md). So this script forwards only image series that radnode did not
-- make: no SR/KO/PR/SEG, nothing whose Manufacturer is radnode's, nothing whose description marks it as AI output.
-- radnode's loop guard drops its own objects anyway; this keeps them off the wire.
--
-- Install: add this file to "LuaScripts" in orthanc.json, and a DicomWeb server entry named "radnode"
-- (see deploy/orthanc/orthanc.json). Change RADNODE_MANUFACTURER if the node's node.manufacturer differs.

local RADNODE_SERVER = 'radnode'
local RADNODE_MANUFACTURER = 'radnode'
local SKIP_MODALITIES = { SR = true, KO = true, PR = true, SEG = true, RTSTRUCT = true, DOC = true }

local function isRadnodeOutput(tags)
  local manufacturer = tags['Manufacturer'] or ''
  local description = string.lower(tags['SeriesDescription'] or '')
  return manufacturer == RADNODE_MANUFACTURER or string.find(description, '^radnode') ~= nil
end

function OnStableStudy(studyId, tags, metadata)
  local ids = {}
  for _, s in ipairs(ParseJson(RestApiGet('/studies/' .. studyId .. '/series'))) do
    local t = s['MainDicomTags']
    if not SKIP_MODALITIES[t['Modality'] or ''] and not isRadnodeOutput(t) then
      table.insert(ids, s['ID'])
    end
  end
  if #ids > 0 then
    -- Asynchronous: a job per study, visible under /jobs. Orthanc does not retry a failed job; radnode's
    -- reconciliation poll (QIDO) finds a study whose push was lost.
    RestApiPost('/dicom-web/servers/' .. RADNODE_SERVER .. '/stow', DumpJson({ Resources = ids, Synchronous = false }, true))
  end
end
