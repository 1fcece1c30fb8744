// nlohmann::json <-> google.protobuf.Struct/Value (numbers are doubles).
#pragma once

#include <google/protobuf/struct.pb.h>

#include <nlohmann/json.hpp>

namespace acheron::gnss {

void json_to_value(const nlohmann::json& j, google::protobuf::Value* out);
// A JSON object into a Struct (non-objects give an empty Struct).
void json_to_struct(const nlohmann::json& j, google::protobuf::Struct* out);
nlohmann::json value_to_json(const google::protobuf::Value& v);
nlohmann::json struct_to_json(const google::protobuf::Struct& s);

}  // namespace acheron::gnss
