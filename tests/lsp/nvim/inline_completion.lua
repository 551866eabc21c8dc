-- Headless Neovim 0.11 as an LSP client of `codeswift lsp`:
--   nvim --headless --clean -l inline_completion.lua PYTHON MODEL ROOT OUT
-- Starts the server with vim.lsp.start, waits until codeswift/status says "ready", asks for an
-- inline completion at the end of a line, types two characters (an incremental didChange) and asks
-- again. Writes what the server saw and answered to OUT as JSON.
local python, model, root, out = arg[1], arg[2], arg[3], arg[4]

local H = dofile(vim.fs.dirname(arg[0]) .. "/harness.lua")
local fail = H.fail

local buf = H.python_buffer(root .. "/nvim_demo.py", {
  "def read(path):",
  "    with open(path) as f:",
  "        data = 'é' + f.re",
  "    return data",
})
local client = H.start_ready({ python, "-m", "codeswift.cli", "lsp", "--model", model, "--device", "cpu",
  "--dtype", "float32", "--debounce-ms", "0", "--max-tokens", "16", "--no-index" }, root, buf, 120)

-- The end of row 3 (0-based line 2), in the position encoding the server chose.
local function inline_at_end_of_line_3()
  local line = vim.api.nvim_buf_get_lines(buf, 2, 3, true)[1]
  local params = {
    textDocument = vim.lsp.util.make_text_document_params(buf),
    position = { line = 2, character = vim.str_utfindex(line, client.offset_encoding, #line) },
    context = { triggerKind = 1 },
  }
  local r, err = client:request_sync("textDocument/inlineCompletion", params, 120000, buf)
  if not r then fail("inlineCompletion failed: " .. tostring(err)) end
  if r.err then fail("inlineCompletion error: " .. vim.inspect(r.err)) end
  return { text = vim.lsp._buf_get_full_text(buf), position = params.position, result = r.result }
end

local first = inline_at_end_of_line_3()
-- What lsp/README suggests for Neovim on CursorHold: tell the server where the cursor rests.
vim.api.nvim_win_set_cursor(0, { 3, 0 })
client:notify("codeswift/cursor", vim.lsp.util.make_position_params(0, client.offset_encoding))
local eol = #"        data = 'é' + f.re"
vim.api.nvim_buf_set_text(buf, 2, eol, 2, eol, { "ad" })
local second = inline_at_end_of_line_3()

vim.fn.writefile({ vim.json.encode({ encoding = client.offset_encoding, first = first, second = second }) }, out)
client:stop()
vim.wait(10000, function() return client:is_stopped() end, 50)
