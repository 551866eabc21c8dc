-- Headless Neovim 0.11 with the shipped ghost-text module (lsp/nvim/codeswift_ghost.lua):
--   nvim --headless --clean -l ghost_text.lua PYTHON MODEL ROOT OUT GHOST_LUA [EXTRA_ARGS_JSON]
-- Asks at the end of line 3 through the module, reads the virtual text it placed, accepts it
-- (<Tab>'s action) and writes what it saw to OUT as JSON.
local python, model, root, out, ghost_path, extra = arg[1], arg[2], arg[3], arg[4], arg[5], arg[6]

local H = dofile(vim.fs.dirname(arg[0]) .. "/harness.lua")
local fail = H.fail

local ghost = dofile(ghost_path)
ghost.setup({ debounce_ms = 0 })

local buf = H.python_buffer(root .. "/ghost_demo.py", {
  "import os",
  "def list_python_files(root):",
  "    names = [n for n in os.listdir(root) if ",
  "    return names",
})
local cmd = { python, "-m", "codeswift.cli", "lsp", "--model", model, "--debounce-ms", "0", "--no-index" }
for _, a in ipairs(vim.json.decode(extra or "[]")) do cmd[#cmd + 1] = a end
local client = H.start_ready(cmd, root, buf, 300)

-- The cursor after the end of the line, as in Insert mode (a script stays in Normal mode).
vim.o.virtualedit = "onemore"
local line = vim.api.nvim_buf_get_lines(buf, 2, 3, true)[1]
vim.api.nvim_win_set_cursor(0, { 3, #line })
if vim.api.nvim_win_get_cursor(0)[2] ~= #line then fail("cursor not at the end of line 3") end
local before = vim.lsp._buf_get_full_text(buf)   -- what the server mirrors (with the final EOL)
local item
ghost.request(buf, function(it) item = it or false end)
if not vim.wait(300000, function() return item ~= nil end, 20) then fail("no inline completion reply") end
local marks = vim.api.nvim_buf_get_extmarks(buf, ghost.ns, 0, -1, { details = true })
local shown = {}
for _, m in ipairs(marks) do
  local d = m[4]
  local first = d.virt_text and d.virt_text[1][1] or ""
  local below = {}
  for _, l in ipairs(d.virt_lines or {}) do below[#below + 1] = l[1][1] end
  shown[#shown + 1] = { row = m[2], col = m[3], first = first, below = below }
end
local accepted = ghost.accept()
local after = vim.lsp._buf_get_full_text(buf)
local cursor = vim.api.nvim_win_get_cursor(0)
local left = #vim.api.nvim_buf_get_extmarks(buf, ghost.ns, 0, -1, {})
local st = client:request_sync("codeswift/status", {}, 5000, buf)
local f = assert(io.open(out, "w"))
f:write(vim.json.encode({
  before = before, item = item or vim.NIL, shown = shown, accepted = accepted, after = after,
  cursor = cursor, marks_left = left, encoding = client.offset_encoding,
  stats = st and st.result and st.result.stats or vim.NIL,
}))
f:close()
client:stop()
vim.wait(5000, function() return client:is_stopped() end, 50)
os.exit(0)
