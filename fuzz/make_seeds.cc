// Writes the fuzzers' seed corpora (fuzz/corpus/<target>/) from code, so the
// small binary seeds in the repository can be remade and reviewed:
//   build-fuzz/fuzz/provp-fuzz-make-seeds fuzz/corpus
// Each seed is a small valid (or deliberately near-valid) input that takes a
// parser past its first checks. Deterministic: fixed values, no RNG.
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <torch/script.h>
#include <torch/torch.h>
#include <zlib.h>
#include <opencv2/imgcodecs.hpp>

#include "core/clip/config.h"
#include "core/clip/safetensors.h"
#include "core/image/image_io.h"
#include "core/provp/provp_options.h"
#include "core/text/text_cleaning.h"
#include "core/train/prompt_set.h"

namespace {

std::string g_root;

void Write(const std::string& target, const std::string& name, const std::string& bytes) {
  const std::string dir = g_root + "/" + target;
  ::mkdir(g_root.c_str(), 0755);
  ::mkdir(dir.c_str(), 0755);
  std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "cannot write %s/%s\n", dir.c_str(), name.c_str());
    std::exit(1);
  }
}

template <typename T>
void Check(const T& status_or, const char* what) {
  if (!status_or.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, std::string(status_or.status().message()).c_str());
    std::exit(1);
  }
}

std::string Gzip(const std::string& text) {
  z_stream zs{};
  deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, text.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  zs.avail_in = static_cast<uInt>(text.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

torch::Tensor Ramp(std::vector<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return torch::arange(n, torch::kFloat32).div(n).reshape(shape);
}

void SafetensorsSeeds() {
  auto two = provp::clip::SerializeSafetensors({{"visual.conv1.weight", Ramp({4, 3, 2, 2})},
                                                {"logit_scale", torch::tensor({4.6f})},
                                                {"half", Ramp({2, 3}).to(torch::kHalf)},
                                                {"ids", torch::arange(5, torch::kInt64)}},
                                               {{"format", "pt"}});
  Check(two, "safetensors");
  Write("safetensors", "four_tensors.safetensors", *two);
  auto empty = provp::clip::SerializeSafetensors({}, {});
  Check(empty, "safetensors");
  Write("safetensors", "empty.safetensors", *empty);
}

void TorchSaveSeeds() {
  c10::impl::GenericDict dict(c10::StringType::get(), c10::AnyType::get());
  dict.insert("visual.conv1.weight", Ramp({4, 3, 2, 2}));
  dict.insert("logit_scale", torch::tensor({4.6f}));
  dict.insert("positional_embedding", Ramp({5, 8}).to(torch::kHalf));
  std::vector<char> flat = torch::jit::pickle_save(c10::IValue(dict));
  Write("torch_save", "state_dict.pt", std::string(flat.begin(), flat.end()));
  c10::impl::GenericDict wrapped(c10::StringType::get(), c10::AnyType::get());
  wrapped.insert("state_dict", dict);
  wrapped.insert("epoch", int64_t{3});
  std::vector<char> nested = torch::jit::pickle_save(c10::IValue(wrapped));
  Write("torch_save", "open_clip_wrapped.pt", std::string(nested.begin(), nested.end()));
}

void TorchScriptSeeds() {
  torch::jit::Module visual("__torch__.Visual");
  visual.register_parameter("class_embedding", Ramp({8}), false);
  visual.register_parameter("proj", Ramp({8, 4}), false);
  torch::jit::Module model("__torch__.Clip");
  model.register_module("visual", visual);
  model.register_parameter("logit_scale", torch::tensor({4.6f}), false);
  model.register_buffer("context_length", torch::tensor({77}, torch::kInt64));
  std::ostringstream out;
  model.save(out);
  Write("torchscript", "module.pt", out.str());
}

// A BPE vocabulary file in OpenAI's format: header, then merges.
std::string BpeText() {
  return "#version: 0.2 - fuzz seed\n"
         "t h\nth e</w>\na </w>\nc a\nca t</w>\np h\nph o\npho t\nphot o</w>\no f</w>\n"
         "d o\ndo g\ndog s</w>\n";
}

void BpeFileSeeds() {
  Write("bpe_file", "small.txt", BpeText());
  Write("bpe_file", "small.txt.gz", Gzip(BpeText()));
}

void HfVocabSeeds() {
  // Byte symbols, their </w> forms, the merged pairs and the special tokens,
  // as CLIP's vocab.json orders them.
  std::vector<std::string> vocab;
  for (uint8_t b : provp::text::ByteSymbolOrder()) vocab.push_back(provp::text::ByteSymbol(b));
  for (uint8_t b : provp::text::ByteSymbolOrder()) {
    vocab.push_back(provp::text::ByteSymbol(b) + provp::text::kEndOfWord);
  }
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"t", "h"}, {"th", "e</w>"}, {"a", "</w>"}, {"c", "a"}, {"ca", "t</w>"}};
  std::string merges_text = "#version: 0.2\n";
  for (const auto& [l, r] : merges) {
    vocab.push_back(l + r);
    merges_text += l + " " + r + "\n";
  }
  vocab.push_back(provp::text::kStartOfText);
  vocab.push_back(provp::text::kEndOfText);
  std::string json = "{";
  for (size_t i = 0; i < vocab.size(); ++i) {
    std::string escaped;
    for (char c : vocab[i]) {
      if (c == '"' || c == '\\') escaped += '\\';
      escaped += c;
    }
    json += (i ? "," : "") + std::string("\"") + escaped + "\":" + std::to_string(i);
  }
  json += "}";
  Write("hf_vocab", "small_pair.txt", json + "\n----\n" + merges_text);
}

void TokenizerSeeds() {
  Write("tokenizer", "ascii.txt", "a photo of a golden retriever.");
  Write("tokenizer", "entities.txt", "caf&eacute; &amp;amp; <b>bold</b> &#x1F600; &nbsp;x");
  Write("tokenizer", "unicode.txt",
        "Stra\xc3\x9f"
        "e \xc4\xb0stanbul \xce\xa3\xce\x91\xce\xa3 \xe2\x80\x83 \xef\xac\x81");
  Write("tokenizer", "contractions.txt",
        "it's they're I'LL we'd 12345 <|startoftext|>x<|endoftext|>");
  Write("tokenizer", "invalid_utf8.txt", "ca\xff\xfet");
}

void Le(std::string& out, uint32_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

// A BMP with a BITMAPINFOHEADER-style header of `header_size` bytes (40, or
// 108 for V4 with its masks inside), `extra` after the header (masks or a
// palette) and `pixels` as stored.
std::string Bmp(uint32_t header_size, int width, int height, int bpp, uint32_t compression,
                const std::string& extra, const std::string& pixels,
                const std::vector<uint32_t>& v4_masks = {}) {
  std::string info;
  Le(info, header_size, 4);
  Le(info, static_cast<uint32_t>(width), 4);
  Le(info, static_cast<uint32_t>(height), 4);
  Le(info, 1, 2);
  Le(info, static_cast<uint32_t>(bpp), 2);
  Le(info, compression, 4);
  Le(info, static_cast<uint32_t>(pixels.size()), 4);
  Le(info, 2835, 4);
  Le(info, 2835, 4);
  Le(info, 0, 4);
  Le(info, 0, 4);
  for (uint32_t m : v4_masks) Le(info, m, 4);
  info.resize(header_size, '\0');
  const uint32_t offset = 14 + header_size + static_cast<uint32_t>(extra.size());
  std::string out = "BM";
  Le(out, offset + static_cast<uint32_t>(pixels.size()), 4);
  Le(out, 0, 4);
  Le(out, offset, 4);
  return out + info + extra + pixels;
}

void BmpSeeds(const std::vector<std::string>& targets) {
  auto write = [&](const char* name, const std::string& bytes) {
    for (const std::string& t : targets) Write(t, name, bytes);
  };
  std::string rows;  // 3x2 at 24 bits: 9 bytes + 3 padding per row
  for (int i = 0; i < 2; ++i) rows += std::string("\x10\x20\x30\x40\x50\x60\x70\x80\x90\0\0\0", 12);
  write("rgb24_3x2.bmp", Bmp(40, 3, 2, 24, 0, "", rows));
  // 2x2 at 32 bits, BI_BITFIELDS with a V4 header and masks in R, G, B, A
  // byte order (they apply), then the same pixels with a 40-byte header
  // and masks after it (they do not).
  const std::string rgba("\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff\x01", 16);
  write("rgba32_bitfields_v4_2x2.bmp",
        Bmp(108, 2, 2, 32, 3, "", rgba, {0xff, 0xff00, 0xff0000, 0xff000000}));
  std::string masks;
  for (uint32_t m : {0xffu, 0xff00u, 0xff0000u}) Le(masks, m, 4);
  write("bgra32_bitfields_2x2.bmp", Bmp(40, 2, -2, 32, 3, masks, rgba));
  // 2x2 at 16 bits, 5-6-5 BI_BITFIELDS (masks after the 40-byte header).
  std::string masks565;
  for (uint32_t m : {0xf800u, 0x7e0u, 0x1fu}) Le(masks565, m, 4);
  write("rgb565_2x2.bmp",
        Bmp(40, 2, 2, 16, 3, masks565, std::string("\x1f\x00\xe0\x07\x00\xf8\xff\xff", 8)));
  // 4x1 at 8 bits with a 3-entry palette, top-down.
  std::string palette("\x00\x00\xff\x00\x00\xff\x00\x00\xff\x00\x00\x00", 12);
  std::string palette_header = Bmp(40, 4, -1, 8, 0, palette, std::string("\x00\x01\x02\x01", 4));
  palette_header[46] = 3;  // clrUsed
  write("indexed8_4x1.bmp", palette_header);
}

// Image seeds go to both image targets: the decoder's and the differential one.
void WriteImage(const std::string& name, const std::string& bytes) {
  Write("image_decode", name, bytes);
  Write("image_codecs_agree", name, bytes);
}

void ImageSeeds() {
  provp::image::RgbImage rgb;
  rgb.height = 6;
  rgb.width = 5;
  for (int i = 0; i < rgb.height * rgb.width * 3; ++i)
    rgb.pixels.push_back(static_cast<uint8_t>(i * 7));
  auto png = provp::image::EncodePng(rgb);
  Check(png, "png");
  WriteImage("rgb_5x6.png", *png);
  auto jpeg = provp::image::EncodeJpeg(rgb, 80);
  Check(jpeg, "jpeg");
  WriteImage("rgb_5x6.jpg", *jpeg);
  cv::Mat gray(4, 3, CV_8UC1, cv::Scalar(100));
  cv::Mat rgba(3, 4, CV_8UC4, cv::Scalar(10, 20, 30, 40));
  cv::Mat deep(3, 3, CV_16UC3, cv::Scalar(1000, 20000, 65535));
  std::vector<uchar> buf;
  cv::imencode(".bmp", gray, buf);
  WriteImage("gray_3x4.bmp", std::string(buf.begin(), buf.end()));
  cv::imencode(".png", rgba, buf);
  WriteImage("rgba_4x3.png", std::string(buf.begin(), buf.end()));
  cv::imencode(".png", deep, buf);
  WriteImage("rgb16_3x3.png", std::string(buf.begin(), buf.end()));
  if (cv::imencode(".webp", rgba, buf)) {
    WriteImage("rgba_4x3.webp", std::string(buf.begin(), buf.end()));
  }
  BmpSeeds({"image_decode", "image_codecs_agree"});
}

void DataSeeds() {
  Write("coop_split", "split_zhou_Fuzz.json",
        R"({"train": [["cat/1.jpg", 0, "cat"], ["dog/2.jpg", 1, "dog"]],
 "val": [["cat/3.jpg", 0, "cat"]],
 "test": [["dog/4.jpg", 1, "dog"], ["cat/5.jpg", 0, "cat"]]})");
  Write("manifest", "manifest.json",
        R"({"name": "pets", "image_root": "images", "class_names": ["cat", "dog"],
 "items": [{"path": "a.jpg", "label": 0, "split": "train"},
           {"path": "b.png", "label": 1},
           {"path": "/abs/c.jpg", "label": 1, "split": "test"},
           {"path": "d.jpg", "label": 0, "split": "val"}]})");
}

void PromptSetSeeds() {
  const provp::clip::ClipConfig tiny = provp::clip::TinyConfig();
  provp::train::PromptSet set;
  set.info.model = provp::provp::DefaultOptionsFor(provp::provp::Variant::kProvpRef);
  set.info.model.depth = 1;
  set.info.model.num_prompts = 2;
  set.info.templates = {"a photo of a {}."};
  set.info.class_names = {"cat", "dog"};
  set.info.backbone_fingerprint = "0123456789abcdef";
  set.info.vision_width = tiny.vision_width;
  set.info.vision_layers = tiny.vision_layers;
  set.prompts = Ramp({1, 2, tiny.vision_width});
  const std::string dir = g_root + "/prompt_set";
  ::mkdir(g_root.c_str(), 0755);
  ::mkdir(dir.c_str(), 0755);
  absl::Status s = provp::train::SavePromptSet(dir + "/provp_ref.provp", set);
  provp::train::PromptSet zero;
  zero.info.model = provp::provp::DefaultOptionsFor(provp::provp::Variant::kZeroShot);
  zero.info.templates = {"a photo of a {}."};
  zero.info.class_names = {"cat"};
  zero.info.vision_width = tiny.vision_width;
  zero.info.vision_layers = tiny.vision_layers;
  absl::Status z = provp::train::SavePromptSet(dir + "/zero_shot.provp", zero);
  if (!s.ok() || !z.ok()) {
    std::fprintf(stderr, "prompt set: %s %s\n", s.ToString().c_str(), z.ToString().c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_ROOT\n", argv[0]);
    return 2;
  }
  g_root = argv[1];
  SafetensorsSeeds();
  TorchSaveSeeds();
  TorchScriptSeeds();
  BpeFileSeeds();
  HfVocabSeeds();
  TokenizerSeeds();
  ImageSeeds();
  DataSeeds();
  PromptSetSeeds();
  std::printf("seeds written under %s\n", g_root.c_str());
  return 0;
}
