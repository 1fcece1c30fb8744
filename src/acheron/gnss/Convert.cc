#include "acheron/gnss/Convert.hh"

namespace acheron::gnss {

void json_to_value(const nlohmann::json& j, google::protobuf::Value* out) {
  switch (j.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
      out->set_null_value(google::protobuf::NULL_VALUE);
      break;
    case nlohmann::json::value_t::boolean:
      out->set_bool_value(j.get<bool>());
      break;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      out->set_number_value(j.get<double>());
      break;
    case nlohmann::json::value_t::string:
      out->set_string_value(j.get<std::string>());
      break;
    case nlohmann::json::value_t::array: {
      auto* list = out->mutable_list_value();
      for (const auto& e : j) json_to_value(e, list->add_values());
      break;
    }
    case nlohmann::json::value_t::object:
      json_to_struct(j, out->mutable_struct_value());
      break;
    case nlohmann::json::value_t::binary:
      out->set_null_value(google::protobuf::NULL_VALUE);
      break;
  }
}

void json_to_struct(const nlohmann::json& j, google::protobuf::Struct* out) {
  if (!j.is_object()) return;
  auto& fields = *out->mutable_fields();
  for (const auto& [k, v] : j.items()) json_to_value(v, &fields[k]);
}

nlohmann::json value_to_json(const google::protobuf::Value& v) {
  switch (v.kind_case()) {
    case google::protobuf::Value::kBoolValue:
      return v.bool_value();
    case google::protobuf::Value::kNumberValue:
      return v.number_value();
    case google::protobuf::Value::kStringValue:
      return v.string_value();
    case google::protobuf::Value::kListValue: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& e : v.list_value().values()) a.push_back(value_to_json(e));
      return a;
    }
    case google::protobuf::Value::kStructValue:
      return struct_to_json(v.struct_value());
    default:
      return nullptr;
  }
}

nlohmann::json struct_to_json(const google::protobuf::Struct& s) {
  nlohmann::json o = nlohmann::json::object();
  for (const auto& [k, v] : s.fields()) o[k] = value_to_json(v);
  return o;
}

}  // namespace acheron::gnss
