-- Shared by the headless Neovim test scripts: dofile(vim.fs.dirname(arg[0]) .. "/harness.lua").
local H = {}

function H.fail(msg)
  io.stderr:write(msg .. "\n")
  os.exit(1)
end

-- Edit PATH as a Python buffer holding LINES; returns the buffer.
function H.python_buffer(path, lines)
  vim.cmd.edit(vim.fn.fnameescape(path))
  local buf = vim.api.nvim_get_current_buf()
  vim.bo[buf].filetype = "python"
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  return buf
end

-- Start `codeswift lsp` (CMD) for BUF and wait until codeswift/status says "ready" (at most
-- TIMEOUT_S for each of initialize and loading); returns the client.
function H.start_ready(cmd, root, buf, timeout_s)
  local client_id = vim.lsp.start({ name = "codeswift", cmd = cmd, root_dir = root }, { bufnr = buf })
  if not client_id then H.fail("vim.lsp.start failed") end
  local client = vim.lsp.get_client_by_id(client_id)
  if not vim.wait(timeout_s * 1000, function() return client.initialized == true end, 50) then
    H.fail("server did not initialize")
  end
  local state
  for _ = 1, timeout_s * 5 do
    local r = client:request_sync("codeswift/status", {}, 5000, buf)
    state = r and r.result and r.result.state
    if state == "ready" or state == "error" then break end
    vim.wait(200)
  end
  if state ~= "ready" then H.fail("server not ready: " .. tostring(state)) end
  return client
end

return H
