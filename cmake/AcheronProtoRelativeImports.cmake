# cmake -DFILE=<x>_pb2_grpc.py -P AcheronProtoRelativeImports.cmake
# Rewrites the stubs' `import <name>_pb2 as <alias>` (grpc_tools writes
# top-level imports) into `from . import <name>_pb2 as <alias>`, so that the
# generated modules import each other inside their package.
file(READ "${FILE}" text)
string(REGEX REPLACE "(^|\n)import ([A-Za-z0-9_]+_pb2) as " "\\1from . import \\2 as "
       text "${text}")
file(WRITE "${FILE}" "${text}")
