// The quick start in C++17 with pie.hpp: stream a completion, chat a little, list instances.
// Errors are exceptions (pie::Error); every handle is freed by its owner's destructor.
//
//   quickstart-cpp [URL] [PROMPT]
#include <cstdlib>
#include <iostream>
#include <string>

#include "pie.hpp"

int main(int argc, char** argv) {
  const std::string url = argc > 1 ? argv[1] : "ws://127.0.0.1:8080";
  const std::string prompt = argc > 2 ? argv[2] : "What is the best pie?";
  try {
    auto client = pie::Client::connect(url);
    const char* key_path = std::getenv("PIE_KEY");
    if (key_path) {
      auto key = pie::Key::load_file(key_path);
      client.authenticate("quickstart", &key);
    } else {
      client.authenticate("quickstart");
    }

    auto completion = client.launch_from_registry("text-completion", {"--prompt", prompt});
    for (;;) {
      auto event = completion.recv(30000);
      if (!event) throw std::runtime_error("no event within 30 s");
      if (event->kind() == PIE_EVENT_KIND_STDOUT) std::cout << event->text() << std::flush;
      if (event->kind() == PIE_EVENT_KIND_COMPLETED) {
        std::cout << "completed: " << event->text() << "\n";
        break;
      }
      if (event->is_terminal()) throw std::runtime_error("instance ended: " + event->text());
    }

    auto chat = client.launch_from_registry("chat");
    chat.send("hello from C++");
    auto reply = chat.recv(10000);
    if (!reply || reply->kind() != PIE_EVENT_KIND_MESSAGE)
      throw std::runtime_error("no reply from chat");
    std::cout << "chat: " << reply->text() << "\n";
    for (const auto& info : client.list_instances())
      std::cout << "instance " << info.id << " status " << info.status << " args "
                << info.arguments.size() << "\n";
    chat.terminate();

    // A server refusal arrives as an exception carrying the status.
    try {
      client.launch_from_registry("no-such-inferlet");
    } catch (const pie::Error& e) {
      std::cout << "expected failure: status " << e.status() << ": " << e.what() << "\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "quickstart-cpp: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
