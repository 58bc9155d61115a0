# Function lengths in clang-formatted C (Linux braces): a signature starts at column 0 with an
# identifier and contains '('; the body is the block from '{' at column 0 to '}' at column 0.
/^[A-Za-z_][^;=]*\(/ && !/^(typedef|struct [a-z_]+ \{)/ { sig=$0; sigline=FNR; next }
/^\{$/ { if (sig != "") { start=sigline; name=sig } next }
/^\}/ { if (name != "") { n=FNR-start+1; if (n > LIM) { sub(/\(.*/, "", name); m=split(name, a, /[ *]+/); printf "%d %s:%d %s\n", n, FILENAME, start, a[m] } } name=""; sig=""; next }
