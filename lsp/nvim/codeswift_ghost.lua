-- codeswift ghost text for Neovim 0.11 (which has no built-in inline completion): the server's
-- textDocument/inlineCompletion item shown as virtual text at the cursor while typing in Insert
-- mode, <Tab> accepts it (and reports the acceptance), anything else hides it.
--
-- Install: copy this file to ~/.config/nvim/lua/codeswift_ghost.lua (the wheel ships it inside the
-- `lsp` package: python -c "import lsp, os; print(os.path.dirname(lsp.__file__))"/nvim/), then
--   require('codeswift_ghost').setup({ debounce_ms = 75, key = '<Tab>' })
-- next to vim.lsp.enable('codeswift'). Neovim 0.12 users can use vim.lsp.inline_completion instead.
local M = { ns = vim.api.nvim_create_namespace('codeswift_ghost'), current = nil }

local function client_for(buf)
  return vim.lsp.get_clients({ bufnr = buf, name = 'codeswift' })[1]
end

function M.clear(buf)
  vim.api.nvim_buf_clear_namespace(buf, M.ns, 0, -1)
  M.current = nil
end

-- Ask for the suggestion at the cursor of the current window; shows it when it arrives, unless
-- the cursor moved meanwhile. `done(item_or_nil)` is called either way (tests use it).
function M.request(buf, done)
  local client = client_for(buf)
  if not client then
    if done then done(nil) end
    return
  end
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  local line = vim.api.nvim_buf_get_lines(buf, row - 1, row, true)[1]
  local params = {
    textDocument = vim.lsp.util.make_text_document_params(buf),
    position = { line = row - 1, character = vim.str_utfindex(line, client.offset_encoding, col) },
    context = { triggerKind = 2 }, -- automatic
  }
  client:request('textDocument/inlineCompletion', params, function(err, result)
    local item = not err and result and result.items and result.items[1] or nil
    local r2, c2 = unpack(vim.api.nvim_win_get_cursor(0))
    if item and r2 == row and c2 == col and vim.api.nvim_get_current_buf() == buf then
      M.show(buf, row - 1, col, item)
    else
      item = nil
    end
    if done then done(item) end
  end, buf)
end

function M.show(buf, row, col, item)
  M.clear(buf)
  local text = type(item.insertText) == 'table' and item.insertText.value or item.insertText
  if not text or text == '' then return end
  local lines = vim.split(text, '\n', { plain = true })
  local below = {}
  for i = 2, #lines do below[#below + 1] = { { lines[i], 'Comment' } } end
  vim.api.nvim_buf_set_extmark(buf, M.ns, row, col, {
    virt_text = { { lines[1], 'Comment' } }, virt_text_pos = 'inline',
    virt_lines = #below > 0 and below or nil,
  })
  M.current = { buf = buf, row = row, col = col, text = text, item = item }
end

-- Insert the shown suggestion at its place and move the cursor after it; false if none.
function M.accept()
  local g = M.current
  if not g then return false end
  local lines = vim.split(g.text, '\n', { plain = true })
  M.clear(g.buf)
  vim.api.nvim_buf_set_text(g.buf, g.row, g.col, g.row, g.col, lines)
  local last_col = #lines == 1 and g.col + #lines[1] or #lines[#lines]
  vim.api.nvim_win_set_cursor(0, { g.row + #lines, last_col })
  local cmd = g.item.command
  local client = client_for(g.buf)
  if client and cmd and cmd.arguments then        -- codeswift.accepted [uri, id]: telemetry
    client:notify('codeswift/completionAccepted', { uri = cmd.arguments[1], id = cmd.arguments[2] })
  end
  return true
end

function M.setup(opts)
  opts = vim.tbl_extend('force', { debounce_ms = 75, key = '<Tab>' }, opts or {})
  local timer = assert(vim.uv.new_timer())
  local group = vim.api.nvim_create_augroup('codeswift_ghost', { clear = true })
  vim.api.nvim_create_autocmd({ 'TextChangedI', 'TextChangedP' }, { group = group, callback = function(ev)
    M.clear(ev.buf)
    timer:stop()
    timer:start(opts.debounce_ms, 0, vim.schedule_wrap(function()
      if vim.api.nvim_get_mode().mode:sub(1, 1) == 'i' then M.request(ev.buf) end
    end))
  end })
  vim.api.nvim_create_autocmd('CursorMovedI', { group = group, callback = function(ev)
    local g, pos = M.current, vim.api.nvim_win_get_cursor(0)
    if g and (g.row ~= pos[1] - 1 or g.col ~= pos[2]) then M.clear(ev.buf) end
  end })
  vim.api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, { group = group, callback = function(ev)
    timer:stop()
    M.clear(ev.buf)
  end })
  vim.keymap.set('i', opts.key, function()
    if not M.accept() then
      vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(opts.key, true, false, true), 'n', false)
    end
  end, { desc = 'codeswift: accept the suggestion' })
end

return M
