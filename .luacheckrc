std = "lua54"
max_line_length = 100
-- Scripts that show shared globals on purpose declare them in place with
-- `-- luacheck: globals NAME`.
