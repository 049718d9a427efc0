// lowbit: compress LLaMA-family models to low bit-widths and run them fast.
#include <csignal>
#include <cstdio>
#include <exception>
#include <new>

#include "base/cpu.h"
#include "base/error.h"
#include "cli/commands.h"

int main(int argc, char** argv) {
  lowbit::configure_runtime(argv);
  // A file size limit (ulimit -f) must give a write error that the writers report and clean up
  // after (temp and spill files), not the default SIGXFSZ death that leaves them behind.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"lowbit: compress LLaMA-family models to low bit-widths, run, measure, fine-tune (QLoRA) and serve them (OpenAI API)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "lowbit 0.1.0");
  lowbit::cli::add_generate(app);
  lowbit::cli::add_perplexity(app);
  lowbit::cli::add_eval(app);
  lowbit::cli::add_tasks(app);
  lowbit::cli::add_sweep(app);
  lowbit::cli::add_info(app);
  lowbit::cli::add_bench(app);
  lowbit::cli::add_quantize(app);
  lowbit::cli::add_synth(app);
  lowbit::cli::add_export(app);
  lowbit::cli::add_finetune(app);
  lowbit::cli::add_train(app);
  lowbit::cli::add_merge(app);
  lowbit::cli::add_serve(app);
  auto is_command = [&](const std::string& name) {
    for (const CLI::App* sub : app.get_subcommands({})) {
      if (sub->get_name() == name) return true;
    }
    return false;
  };
  if (argc > 1 && argv[1][0] != '-' && !is_command(argv[1])) {
    std::fprintf(stderr, "lowbit: unknown command '%s' (see lowbit --help)\n", argv[1]);
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "lowbit: %s (see lowbit --help)\n", e.what());
    return 2;
  } catch (const lowbit::Error& e) {
    std::fprintf(stderr, "lowbit: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "lowbit: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lowbit: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
