-- wrk script: each write carries 16 requests for wrk.path (HTTP/1.1 pipelining, the depth
-- of TechEmpower's plaintext test). The load generator then spends one write and one read
-- on 16 responses, so the server, not wrk, sets the pace.
init = function(args)
  local batch = {}
  for i = 1, 16 do
    batch[i] = wrk.format(nil, wrk.path)
  end
  pipelined = table.concat(batch)
end

request = function()
  return pipelined
end
