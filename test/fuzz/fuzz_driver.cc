// Standalone driver for fuzz targets when libFuzzer is not used: replays each
// file given (or every file in each directory given), then a fixed number of
// pseudo-random inputs, some derived from the corpus by byte mutations
// (20000, or N given as -runs=N as libFuzzer spells it).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  std::vector<std::string> corpus;
  int iterations = 20000;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]).starts_with("-runs=")) {
      iterations = std::stoi(argv[i] + 6);
      continue;
    }
    std::filesystem::path p(argv[i]);
    std::vector<std::filesystem::path> files;
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::directory_iterator(p)) files.push_back(e.path());
    } else {
      files.push_back(p);
    }
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      corpus.emplace_back((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    }
  }
  for (const auto& c : corpus) {
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(c.data()), c.size());
  }
  std::uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  for (int it = 0; it < iterations; ++it) {
    std::string input;
    if (!corpus.empty() && it % 2 == 0) {
      input = corpus[next() % corpus.size()];
      const int flips = 1 + static_cast<int>(next() % 8);
      for (int k = 0; k < flips && !input.empty(); ++k) {
        switch (next() % 3) {
          case 0:
            input[next() % input.size()] = static_cast<char>(next());
            break;
          case 1:
            input.erase(next() % input.size(), 1 + next() % 4);
            break;
          default:
            input.insert(next() % input.size(), 1, static_cast<char>(next()));
            break;
        }
      }
    } else {
      input.resize(next() % 256);
      for (auto& ch : input) ch = static_cast<char>(next());
    }
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
  }
  std::printf("%zu corpus inputs and %d generated inputs ran without a fault\n", corpus.size(),
              iterations);
  return 0;
}
