# gRPC schemas: C++ stubs for the library, Python stubs for the Python package.
#
# acheron_add_proto(NAME PROTOS file.proto ...)
#   Generates <file>.pb.{h,cc} and <file>.grpc.pb.{h,cc} from proto/acheron/
#   into <build>/proto/acheron/ and declares the static library
#   acheron_<NAME> (alias acheron::<NAME>) holding them, linked to gRPC++,
#   protobuf and the reflection service. Include the headers as
#   "acheron/<file>.grpc.pb.h". Python stubs (<file>_pb2.py,
#   <file>_pb2_grpc.py) are generated with python3-grpc-tools into the
#   subpackage acheron.proto: <build>/python/acheron/proto/ in the build tree,
#   installed into the package by `pip install .` (component "python").
#   Every schema's Python stubs are built by the target acheron_proto_python.
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_program(ACHERON_GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)
find_program(ACHERON_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)

set(ACHERON_PROTO_DIR ${PROJECT_SOURCE_DIR}/proto)
set(ACHERON_PROTO_OUT ${PROJECT_BINARY_DIR}/proto)
set(ACHERON_PROTO_PY_OUT ${PROJECT_BINARY_DIR}/python/acheron/proto)
add_custom_target(acheron_proto_python)

function(acheron_add_proto name)
  cmake_parse_arguments(ARG "" "" "PROTOS" ${ARGN})
  file(MAKE_DIRECTORY ${ACHERON_PROTO_OUT}/acheron ${ACHERON_PROTO_PY_OUT})
  set(sources)
  set(python_outputs)
  foreach(proto ${ARG_PROTOS})
    get_filename_component(stem ${proto} NAME_WE)
    set(src ${ACHERON_PROTO_DIR}/acheron/${proto})
    set(out ${ACHERON_PROTO_OUT}/acheron/${stem})
    add_custom_command(
      OUTPUT ${out}.pb.cc ${out}.pb.h ${out}.grpc.pb.cc ${out}.grpc.pb.h
      COMMAND protobuf::protoc
        --proto_path=${ACHERON_PROTO_DIR}/acheron
        --cpp_out=${ACHERON_PROTO_OUT}/acheron
        --grpc_out=${ACHERON_PROTO_OUT}/acheron
        --plugin=protoc-gen-grpc=${ACHERON_GRPC_CPP_PLUGIN}
        ${src}
      DEPENDS ${src}
      COMMENT "gRPC C++ stubs for ${proto}")
    list(APPEND sources ${out}.pb.cc ${out}.grpc.pb.cc)
    if(ACHERON_PYTHON3)
      set(py ${ACHERON_PROTO_PY_OUT}/${stem})
      add_custom_command(
        OUTPUT ${py}_pb2.py ${py}_pb2_grpc.py
        # -E: Debian's grpc_tools, also under pip's isolated build
        # environment, whose PYTHONPATH hides the system's packages.
        COMMAND ${ACHERON_PYTHON3} -E -m grpc_tools.protoc
          --proto_path=${ACHERON_PROTO_DIR}/acheron
          --python_out=${ACHERON_PROTO_PY_OUT}
          --grpc_python_out=${ACHERON_PROTO_PY_OUT}
          ${src}
        # grpc_tools writes `import <file>_pb2` (a top-level module): made
        # relative, so the stubs work as the subpackage acheron.proto.
        COMMAND ${CMAKE_COMMAND} -DFILE=${py}_pb2_grpc.py
          -P ${PROJECT_SOURCE_DIR}/cmake/AcheronProtoRelativeImports.cmake
        DEPENDS ${src} ${PROJECT_SOURCE_DIR}/cmake/AcheronProtoRelativeImports.cmake
        COMMENT "gRPC Python stubs for ${proto}")
      list(APPEND python_outputs ${py}_pb2.py ${py}_pb2_grpc.py)
    endif()
  endforeach()

  set(target acheron_${name})
  add_library(${target} STATIC ${sources})
  add_library(acheron::${name} ALIAS ${target})
  # Generated code is compiled file by file (its file-level statics are not
  # written for unity builds).
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name}
                                             OUTPUT_NAME acheron_${name}
                                             UNITY_BUILD OFF)
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${ACHERON_PROTO_OUT}>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${target} PUBLIC gRPC::grpc++ gRPC::grpc++_reflection
                                         protobuf::libprotobuf)
  install(TARGETS ${target} EXPORT acheronTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(DIRECTORY ${ACHERON_PROTO_OUT}/acheron/
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/acheron
          FILES_MATCHING PATTERN "*.h")

  if(python_outputs)
    set(init ${ACHERON_PROTO_PY_OUT}/__init__.py)
    file(CONFIGURE OUTPUT ${init} @ONLY CONTENT [=["""gRPC stubs of Acheron's services, generated from proto/acheron/ with
python3-grpc-tools: <schema>_pb2 (messages) and <schema>_pb2_grpc (stubs and
servicers), e.g. ``from acheron.proto import daqdata_pb2``."""
]=])
    add_custom_target(${target}_python ALL DEPENDS ${python_outputs})
    add_dependencies(acheron_proto_python ${target}_python)
    install(FILES ${python_outputs} ${init}
            DESTINATION ${ACHERON_PYTHON_INSTALL_DIR}/proto COMPONENT python)
  endif()
endfunction()
