std = "lua54"
max_line_length = 120
-- Scripts that show shared globals on purpose declare them in place with
-- `-- luacheck: globals NAME`.
