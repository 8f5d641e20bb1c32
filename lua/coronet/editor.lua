--- coronet.editor: the REPL's line editor, driven by stdin readiness.
-- The caller reads stdin however it likes (the REPL reads it through the
-- loop, so tasks run meanwhile), hands the bytes to `ed:feed(data)` and
-- takes events from `ed:step()`. Background output goes around the line:
-- `ed:hide()` clears it, the output is written, `ed:show()` redraws the
-- prompt and the half-typed line as they were.
-- Keys: printable text (UTF-8), Left/Right, Home/End, Ctrl-A/E/B/F,
-- Backspace, Delete, Ctrl-D (delete; end of input on an empty line),
-- Ctrl-K/U/W (kill to end / to start / word back), Ctrl-L (clear screen),
-- Up/Down and Ctrl-P/N (history), Tab (completion), Ctrl-C (interrupt),
-- Enter. The terminal is in raw mode only between `ed:start()` and the
-- event that ends the line, and restored by `ed:stop()`.
-- Not loaded by `require "coronet"`; only the REPL uses it.
local core = require "coronet.core"

local M = {}

local Editor = {}
Editor.__index = Editor

--- new(opts) -> editor. opts: fd (input terminal, default 0), write
-- (function writing raw text to the terminal, default io.stdout's write),
-- history_file (path, optional), history_max (default 1000), complete
-- (function(text_before_cursor) -> candidates, start: each candidate
-- replaces the text from byte start to the cursor).
function M.new(opts)
    opts = opts or {}
    local out = io.stdout
    local ed = setmetatable({
        fd = opts.fd or 0,
        write = opts.write or function(s) out:write(s) out:flush() end,
        complete = opts.complete,
        history_file = opts.history_file,
        history_max = opts.history_max or 1000,
        hist = {}, pending = "", buf = {}, pos = 0, prompt = "",
        active = false, shown = false,
    }, Editor)
    if ed.history_file then ed:load_history(ed.history_file) end
    return ed
end

---------------------------------------------------------------------------
-- history
---------------------------------------------------------------------------

--- ed:load_history(path): read earlier sessions' lines (one a line; the
-- last history_max are kept). A missing file is an empty history.
function Editor:load_history(path)
    local f = io.open(path, "r")
    if not f then return end
    for line in f:lines() do
        if line ~= "" then self.hist[#self.hist + 1] = line end
    end
    f:close()
    local extra = #self.hist - self.history_max
    if extra > 0 then table.move(self.hist, extra + 1, #self.hist, 1) for _ = 1, extra do self.hist[#self.hist] = nil end end
end

--- ed:add_history(line): remember line (not blank, not the same as the
-- last one) and append it to the history file.
function Editor:add_history(line)
    if not line:find("%S") or self.hist[#self.hist] == line or line:find("\n", 1, true) then return end
    self.hist[#self.hist + 1] = line
    if #self.hist > self.history_max then table.remove(self.hist, 1) end
    if self.history_file then
        local f = io.open(self.history_file, "a")
        if f then
            f:write(line, "\n")
            f:close()
        end
    end
end

---------------------------------------------------------------------------
-- display
---------------------------------------------------------------------------

local function text(buf, i, j) return table.concat(buf, "", i, j) end

--- ed:refresh(): redraw the prompt and the line, cursor in place; a line
-- wider than the terminal scrolls sideways to keep the cursor visible.
function Editor:refresh()
    local cols = core.tty_size(self.fd)
    local plen = utf8.len(self.prompt) or #self.prompt
    local first, pos, last = 1, self.pos, #self.buf
    while plen + pos >= cols and pos > 0 do first, pos = first + 1, pos - 1 end
    while plen + (last - first + 1) > cols - 1 and last > first do last = last - 1 end
    local col = plen + pos
    self.write("\r" .. self.prompt .. text(self.buf, first, last) .. "\27[0K\r"
               .. (col > 0 and ("\27[" .. col .. "C") or ""))
    self.shown = true
end

--- ed:hide(): clear the line so other output can be written in its place.
function Editor:hide()
    if self.active and self.shown then
        self.write("\r\27[0K")
        self.shown = false
    end
end

--- ed:show(): redraw the line hidden by ed:hide().
function Editor:show()
    if self.active and not self.shown then self:refresh() end
end

---------------------------------------------------------------------------
-- a line
---------------------------------------------------------------------------

--- ed:start(prompt) -> true | nil, err: raw mode on, a fresh empty line
-- after prompt.
function Editor:start(prompt)
    local ok, err = core.tty_raw(self.fd)
    if not ok then return nil, err end
    self.prompt, self.buf, self.pos = prompt or "> ", {}, 0
    self.hidx, self.saved = #self.hist + 1, nil
    self.active = true
    self:refresh()
    return true
end

--- ed:stop(): end the line (if any) and restore the terminal's mode.
function Editor:stop()
    self.active, self.shown = false, false
    core.tty_restore(self.fd)
end

--- ed:feed(data): bytes read from the terminal, for ed:step().
function Editor:feed(data)
    self.pending = self.pending .. data
end

--- ed:set_line(s): replace the line's text with s, cursor at its end (not redrawn).
function Editor:set_line(s)
    local b = {}
    for _, c in utf8.codes(s, true) do b[#b + 1] = utf8.char(c) end
    self.buf, self.pos = b, #b
end

local function insert(self, ch)
    table.insert(self.buf, self.pos + 1, ch)
    self.pos = self.pos + 1
    self:refresh()
end

local function history_move(self, d)
    local n = #self.hist
    if n == 0 then return end
    if self.hidx == n + 1 then self.saved = text(self.buf) end
    local i = math.max(1, math.min(n + 1, self.hidx + d))
    if i == self.hidx then return end
    self.hidx = i
    self:set_line(i == n + 1 and (self.saved or "") or self.hist[i])
    self:refresh()
end

local function common_prefix(list)
    local p = list[1]
    for i = 2, #list do
        local s = list[i]
        local j = 0
        while j < #p and j < #s and p:byte(j + 1) == s:byte(j + 1) do j = j + 1 end
        p = p:sub(1, j)
    end
    return p
end

local function complete(self)
    if not self.complete then return end
    local before = text(self.buf, 1, self.pos)
    local ok, cands, start = pcall(self.complete, before)
    if not ok or type(cands) ~= "table" or #cands == 0 then self.write("\a") return end
    local word = before:sub(start)
    local new = #cands == 1 and cands[1] or common_prefix(cands)
    if #new > #word then
        local after = text(self.buf, self.pos + 1)
        self:set_line(before:sub(1, start - 1) .. new)
        local p = self.pos
        self:set_line(before:sub(1, start - 1) .. new .. after)
        self.pos = p
        self:refresh()
        return
    end
    if #cands == 1 then return end
    -- nothing more in common: list them under the line, in columns
    local w = 0
    for _, c in ipairs(cands) do w = math.max(w, #c) end
    local cols = core.tty_size(self.fd)
    local per = math.max(1, (cols - 1) // (w + 2))
    local lines, cur = {}, {}
    for i, c in ipairs(cands) do
        cur[#cur + 1] = c .. string.rep(" ", w + 2 - #c)
        if #cur == per or i == #cands then lines[#lines + 1] = table.concat(cur) cur = {} end
    end
    self.write("\r\n" .. table.concat(lines, "\r\n") .. "\r\n")
    self:refresh()
end

local function finish(self, ev, line)
    self.active, self.shown = false, false
    core.tty_restore(self.fd)
    return ev, line
end

--- ed:step() -> event [, line] | nil: handle the keys fed so far until one
-- ends the line: "line" (Enter; with the text), "interrupt" (Ctrl-C),
-- "eof" (Ctrl-D on an empty line). nil: more input is needed. After an
-- event the terminal is back in its own mode; the rest of the input is
-- kept for the next ed:start().
function Editor:step()
    if not self.active then return nil end
    while #self.pending > 0 do
        local p = self.pending
        local b = p:byte(1)
        local used = 1
        if b == 27 then                                  -- escape sequences
            if #p < 2 then return nil end
            local c2 = p:sub(2, 2)
            if c2 == "[" then
                local params, final = p:match("^\27%[([%d;]*)([\64-\126])")
                if not final then
                    if p:match("^\27%[[%d;]*$") then return nil end
                    used = 2
                else
                    used = 2 + #params + 1
                    if final == "A" then history_move(self, -1)
                    elseif final == "B" then history_move(self, 1)
                    elseif final == "C" then
                        if self.pos < #self.buf then self.pos = self.pos + 1 self:refresh() end
                    elseif final == "D" then
                        if self.pos > 0 then self.pos = self.pos - 1 self:refresh() end
                    elseif final == "H" or (final == "~" and (params == "1" or params == "7")) then
                        self.pos = 0 self:refresh()
                    elseif final == "F" or (final == "~" and (params == "4" or params == "8")) then
                        self.pos = #self.buf self:refresh()
                    elseif final == "~" and params == "3" then
                        if self.pos < #self.buf then table.remove(self.buf, self.pos + 1) self:refresh() end
                    end
                end
            elseif c2 == "O" then
                if #p < 3 then return nil end
                used = 3
                local f = p:sub(3, 3)
                if f == "H" then self.pos = 0 self:refresh()
                elseif f == "F" then self.pos = #self.buf self:refresh() end
            else
                used = 2                                 -- Alt-key: ignored
            end
        elseif b == 13 or b == 10 then
            self.pending = p:sub(2)
            if b == 13 and self.pending:byte(1) == 10 then self.pending = self.pending:sub(2) end
            local line = text(self.buf)
            self.write("\r" .. self.prompt .. line .. "\27[0K\r\n")   -- whole, wrapped if long
            return finish(self, "line", line)
        elseif b == 3 then
            self.pending = p:sub(2)
            self.pos = #self.buf
            self:refresh()
            self.write("^C\r\n")
            return finish(self, "interrupt")
        elseif b == 4 then
            if #self.buf == 0 then
                self.pending = p:sub(2)
                self.write("\r\n")
                return finish(self, "eof")
            end
            if self.pos < #self.buf then table.remove(self.buf, self.pos + 1) self:refresh() end
        elseif b == 127 or b == 8 then
            if self.pos > 0 then
                table.remove(self.buf, self.pos)
                self.pos = self.pos - 1
                self:refresh()
            end
        elseif b == 9 then complete(self)
        elseif b == 1 then self.pos = 0 self:refresh()
        elseif b == 5 then self.pos = #self.buf self:refresh()
        elseif b == 2 then if self.pos > 0 then self.pos = self.pos - 1 self:refresh() end
        elseif b == 6 then if self.pos < #self.buf then self.pos = self.pos + 1 self:refresh() end
        elseif b == 11 then
            for i = #self.buf, self.pos + 1, -1 do self.buf[i] = nil end
            self:refresh()
        elseif b == 21 then
            for _ = 1, self.pos do table.remove(self.buf, 1) end
            self.pos = 0
            self:refresh()
        elseif b == 23 then
            local i = self.pos
            while i > 0 and self.buf[i]:match("%s") do i = i - 1 end
            while i > 0 and not self.buf[i]:match("%s") do i = i - 1 end
            for _ = i + 1, self.pos do table.remove(self.buf, i + 1) end
            self.pos = i
            self:refresh()
        elseif b == 12 then self.write("\27[H\27[2J") self:refresh()
        elseif b == 16 then history_move(self, -1)
        elseif b == 14 then history_move(self, 1)
        elseif b >= 32 then                              -- text: one UTF-8 character
            local n = b < 0x80 and 1 or b >= 0xF0 and 4 or b >= 0xE0 and 3 or b >= 0xC0 and 2 or 1
            if #p < n then return nil end
            used = n
            insert(self, p:sub(1, n))
        end
        self.pending = self.pending:sub(used + 1)
    end
    return nil
end

--- ed:line() -> the text typed so far on the current line.
function Editor:line() return text(self.buf) end

return M
