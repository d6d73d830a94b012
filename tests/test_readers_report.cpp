// `dalesim report`: one self-contained HTML page, rendered in headless Chromium with no console
// messages, every figure decoded and the screenshot not blank.
#include <string>

#include "test_readers_fixture.hpp"

namespace {

using namespace readers_test;

constexpr int kFigures = 10;  // dalesim_analysis.figures.ALL

// Headless Chromium with a fresh profile, nothing fetched from the network, console to stderr.
std::string chromium(const std::string& profile) {
  return "timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
         "--disable-background-networking --disable-component-update --disable-sync --disable-extensions "
         "--user-data-dir=" + quote(profile) + " --enable-logging=stderr --v=0 --virtual-time-budget=5000 ";
}

// The page's console messages (errors, uncaught exceptions, logs), one per line.
std::string console_lines(const std::string& log) {
  std::string lines, line;
  std::istringstream in(log);
  while (std::getline(in, line))
    if (line.find(":CONSOLE") != std::string::npos) lines += line + "\n";
  return lines;
}

class Report : public ReaderSuite {
 protected:
  void SetUp() override {
    ReaderSuite::SetUp();
    if (std::string why = python_missing("numpy, h5py, matplotlib, pandas, xarray",
                                         "python3-numpy python3-h5py python3-matplotlib python3-pandas python3-xarray");
        !why.empty())
      GTEST_SKIP() << why;
  }
  static std::string write_report() {
    const std::string html = dir + "/report.html";
    if (fs::exists(html)) return html;
    Outcome o = shell(std::string(DALESIM_BINARY) + " report " + quote(out) + " -o " + quote(html));
    EXPECT_EQ(o.code, 0) << o.output;
    EXPECT_NE(o.output.find("wrote " + html), std::string::npos) << o.output;
    return html;
  }
};

TEST_F(Report, IsOneSelfContainedPage) {
  const std::string text = read_text(write_report());
  std::size_t images = 0;
  for (std::size_t at = text.find("src=\"data:image/png;base64,"); at != std::string::npos;
       at = text.find("src=\"data:image/png;base64,", at + 1))
    ++images;
  EXPECT_EQ(images, static_cast<std::size_t>(kFigures));
  for (const char* external : {"src=\"http", "href=\"http", "src=\"//", "@import", "url("})
    EXPECT_EQ(text.find(external), std::string::npos) << external;
  for (const char* part : {"<h2>Replicas</h2>", "<h2>Sweep file</h2>", "name = &quot;readers&quot;",
                           "status-complete", "alpha_init", "final eval loss", "Where alpha went", "Evaluation set", "progress log", "timing"})
    EXPECT_NE(text.find(part), std::string::npos) << part;
}

TEST_F(Report, MissingFileAndDirectoryAreBadInput) {
  Outcome o = shell(std::string(DALESIM_BINARY) + " report " + quote(dir + "/none.h5") + " -o " +
                    quote(dir + "/r.html"));
  EXPECT_EQ(o.code, 2) << o.output;
  EXPECT_NE(o.output.find("no such file"), std::string::npos) << o.output;
  o = shell(std::string(DALESIM_BINARY) + " report " + quote(out) + " -o " + quote(dir + "/no/dir/r.html"));
  EXPECT_EQ(o.code, 2) << o.output;
  std::ofstream(dir + "/notes.txt") << "not HDF5\n";
  o = shell(std::string(DALESIM_BINARY) + " report " + quote(dir + "/notes.txt") + " -o " + quote(dir + "/r.html"));
  EXPECT_EQ(o.code, 2) << o.output;
  EXPECT_NE(o.output.find("not an HDF5 file"), std::string::npos) << o.output;
}

TEST_F(Report, BeatBaselineKeepsTheReplicasThatBeatTheirBaseline) {
  Outcome o = shell(std::string(DALESIM_BINARY) + " report " + quote(out) + " -o " + quote(dir + "/f.html") +
                    " --beat-baseline 1.5");
  EXPECT_EQ(o.code, 2) << o.output;
  EXPECT_NE(o.output.find("--beat-baseline = 1.5; allowed: a fraction in [0, 1)"), std::string::npos) << o.output;
  o = shell(std::string(DALESIM_BINARY) + " report " + quote(out) + " -o " + quote(dir + "/f.html") +
            " --beat-baseline 0");
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_NE(read_text(dir + "/f.html").find("replicas whose final loss beats the baseline by 0"), std::string::npos);
}

TEST_F(Report, NamesAMissingPythonModule) {
  // An interpreter without the packages: Python without its site packages (-S) stands in for one.
  const std::string fake = dir + "/bare-python";
  std::ofstream(fake) << "#!/bin/sh\nexec " << kPython << " -S \"$@\"\n";
  fs::permissions(fake, fs::perms::owner_all);
  Outcome o = shell("DALESIM_PYTHON=" + quote(fake) + " " + DALESIM_BINARY + " report " + quote(out) + " -o " +
                    quote(dir + "/r.html"));
  EXPECT_EQ(o.code, 1) << o.output;
  EXPECT_NE(o.output.find("missing Python module(s) numpy"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("apt-get install python3-numpy"), std::string::npos) << o.output;
  o = shell("DALESIM_PYTHON=/nonexistent/python3 " + std::string(DALESIM_BINARY) + " report " + quote(out) +
            " -o " + quote(dir + "/r.html"));
  EXPECT_EQ(o.code, 2) << o.output;
  EXPECT_NE(o.output.find("DALESIM_PYTHON=/nonexistent/python3: not an executable file"), std::string::npos)
      << o.output;
}

TEST_F(Report, RendersInHeadlessChromiumWithoutConsoleErrorsAndDrawsTheFigures) {
  if (!on_path("chromium"))
    GTEST_SKIP() << "chromium not on PATH (Debian package chromium; .ci/install-deps installs it)";
  // The check must see console errors: a control page with one is caught.
  const std::string control = dir + "/control.html";
  std::ofstream(control) << "<!DOCTYPE html><html><body><script>console.error('control');</script></body></html>";
  Outcome c = shell(chromium(dir + "/profile-control") + "--dump-dom " + quote("file://" + control));
  ASSERT_NE(console_lines(c.output).find("control"), std::string::npos) << "console messages not seen:\n" << c.output;

  const std::string html = write_report();
  Outcome dom = shell(chromium(dir + "/profile-dom") + "--dump-dom " + quote("file://" + html));
  ASSERT_EQ(dom.code, 0) << dom.output;
  EXPECT_EQ(console_lines(dom.output), "");
  const std::string drawn = "data-figures-drawn=\"" + std::to_string(kFigures) + "\"";
  EXPECT_NE(dom.output.find(drawn), std::string::npos) << "figures not all decoded";
  EXPECT_NE(dom.output.find("data-figures-total=\"" + std::to_string(kFigures) + "\""), std::string::npos);

  const std::string shot = dir + "/report.png";
  Outcome s = shell(chromium(dir + "/profile-shot") + "--hide-scrollbars --window-size=1200,1800 --screenshot=" +
                    quote(shot) + " " + quote("file://" + html));
  ASSERT_EQ(s.code, 0) << s.output;
  EXPECT_EQ(console_lines(s.output), "");
  ASSERT_TRUE(fs::exists(shot)) << s.output;
  // Not blank: many non-white pixels and many colours (figures, not just text on white).
  const std::string script =
      "import sys; from PIL import Image; im = Image.open(sys.argv[1]).convert('RGB'); px = list(im.getdata()); "
      "ink = sum(1 for p in px if min(p) < 235) / len(px); colours = len(set(px)); "
      "print('ink=%.4f colours=%d' % (ink, colours))";
  Outcome m = shell(std::string(kPython) + " -c " + quote(script) + " " + quote(shot));
  ASSERT_EQ(m.code, 0) << m.output;
  const double ink = std::strtod(m.output.c_str() + m.output.find("ink=") + 4, nullptr);
  const long colours = std::strtol(m.output.c_str() + m.output.find("colours=") + 8, nullptr, 10);
  EXPECT_GT(ink, 0.05) << m.output;
  EXPECT_GT(colours, 500) << m.output;
}

// Sweeps of other shapes: zipped axes, a swept task (with conditions, an arch without E/I types),
// and two seeds per condition of lr_alpha x alpha_init. Each report renders every figure.
TEST_F(Report, OtherSweepShapesRenderInHeadlessChromium) {
  if (!on_path("chromium"))
    GTEST_SKIP() << "chromium not on PATH (Debian package chromium; .ci/install-deps installs it)";
  const std::string train = "[train]\nn_steps = 7\nlog_every = 3\ncheckpoint_every = 5\n";
  const std::pair<const char*, std::string> sweeps[] = {
      {"zip", "name = \"zip\"\n[model]\narch = \"mix\"\nn_units = 8\n[task]\nname = \"adding\"\nT = 6\nbatch = 4\n" + train +
                  "[sweep]\nseeds = 2\n[[sweep.zip]]\n\"train.lr\" = [0.001, 0.01]\n\"model.rho\" = [0.8, 1.2]\n"
                  "[sweep.grid]\n\"model.alpha_init\" = [0.3, 0.7]\n"},
      {"tasks", "name = \"tasks\"\n[model]\nn_units = 8\n[task]\nbatch = 8\n" + train +
                    "[sweep]\nseeds = 2\n[sweep.grid]\n\"task.name\" = [\"adding\", \"go_nogo\"]\n"
                    "\"model.arch\" = [\"mix\", \"free\"]\n"},
      {"two_seeds", "name = \"two_seeds\"\n[model]\narch = \"mix\"\nn_units = 8\n[task]\nname = \"adding\"\nT = 6\n"
                        "batch = 4\n" + train +
                        "[sweep]\nseeds = 2\n[sweep.grid]\n\"train.lr_alpha\" = [0.05, 0.5]\n"
                        "\"model.alpha_init\" = [0.6, 0.9]\n"},
  };
  for (const auto& [name, text] : sweeps) {
    SCOPED_TRACE(name);
    const std::string sweep = dir + "/" + name + ".toml", h5 = dir + "/" + name + ".h5",
                      html = dir + "/" + name + ".html";
    std::ofstream(sweep) << text;
    Outcome r = shell(std::string(DALESIM_BINARY) + " run " + quote(sweep) + " -o " + quote(h5) + " -q --force");
    ASSERT_EQ(r.code, 0) << r.output;
    Outcome w = shell(std::string(DALESIM_BINARY) + " report " + quote(h5) + " -o " + quote(html));
    ASSERT_EQ(w.code, 0) << w.output;
    const std::string page = read_text(html);
    EXPECT_EQ(page.find("could not be drawn"), std::string::npos);
    Outcome dom = shell(chromium(dir + "/profile-" + name) + "--dump-dom " + quote("file://" + html));
    ASSERT_EQ(dom.code, 0) << dom.output;
    EXPECT_EQ(console_lines(dom.output), "");
    EXPECT_NE(dom.output.find("data-figures-drawn=\"" + std::to_string(kFigures) + "\""), std::string::npos)
        << "figures not all decoded";
  }
}

}  // namespace
