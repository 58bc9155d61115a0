# Every key path of a JSON value with its leaf types, as PATH<TAB>type|type (the reference
# harness's jsonpaths.py, in jq): arrays are written [] so all elements share one path; an empty
# object or array is a leaf of type object / array. Use with -s over a JSON-lines file.
def leaf: if . == null then "null" elif type == "boolean" then "bool" elif type == "number" then "number" else "string" end;
def walk(p):
  if type == "object" then
    (if length == 0 then [(if p == "" then "." else p end), "object"] else to_entries[] | .key as $k | .value | walk(p + "." + $k) end)
  elif type == "array" then
    (if length == 0 then [p + "[]", "array"] else .[] | walk(p + "[]") end)
  else [p, leaf] end;
[.[] | walk("")] | group_by(.[0]) | map([.[0][0], (map(.[1]) | unique | join("|"))]) | .[] | @tsv
