# The C program after "<!-- liboomprotect-example -->" in README.md, without its fences.
/^<!-- liboomprotect-example -->$/,/^```$/{
/^<!--/d
/^```/d
p
}
