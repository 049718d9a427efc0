// Noticing a client's hang-up without writing to it (serve/peer_socket.h): on a real loopback TCP
// connection, the accepted socket is found from the addresses a request reports; it reads as
// open while the client is connected (with or without unread bytes) and as gone once the client
// has closed. Through the server: a non-streamed request whose client hung up is cancelled
// instead of running to max_tokens. Every wait is bounded.
#include "serve/peer_socket.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace lowbit {
namespace {

int bound_port(int fd) {
  sockaddr_in a{};
  socklen_t n = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
  return ntohs(a.sin_port);
}

struct Loopback {
  int listener = -1, client = -1, accepted = -1;
  Loopback() {
    listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(listen(listener, 1), 0);
    a.sin_port = htons(static_cast<uint16_t>(bound_port(listener)));
    client = socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_EQ(connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    accepted = accept(listener, nullptr, nullptr);
    EXPECT_GE(accepted, 0);
  }
  ~Loopback() {
    for (int fd : {listener, client, accepted})
      if (fd >= 0) close(fd);
  }
};

// peer_hung_up polled until it says yes, for at most ~2 s.
bool becomes_gone(int fd) {
  for (int i = 0; i < 200; ++i) {
    if (peer_hung_up(fd)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST(PeerSocket, FindsTheAcceptedSocketOfAConnection) {
  Loopback lb;
  const int server_port = bound_port(lb.listener), client_port = bound_port(lb.client);
  EXPECT_EQ(connection_socket("127.0.0.1", client_port, server_port), lb.accepted);
  EXPECT_EQ(connection_socket("127.0.0.2", client_port, server_port), -1);  // another peer host
  EXPECT_EQ(connection_socket("127.0.0.1", client_port, server_port + 1), -1);
  EXPECT_EQ(connection_socket("127.0.0.1", -1, server_port), -1);
  // The client's own socket is the same connection seen from the other end: not a match.
  EXPECT_EQ(connection_socket("127.0.0.1", server_port, client_port), lb.client);
}

TEST(PeerSocket, OpenUntilThePeerCloses) {
  Loopback lb;
  EXPECT_FALSE(peer_hung_up(lb.accepted));
  ASSERT_EQ(send(lb.client, "GET / HTTP/1.1\r\n", 16, 0), 16);  // a pipelined request waits unread
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(peer_hung_up(lb.accepted));
  char buf[16];
  EXPECT_EQ(recv(lb.accepted, buf, sizeof buf, MSG_PEEK), 16);  // and is still there to read
  close(lb.client);
  lb.client = -1;
  EXPECT_TRUE(becomes_gone(lb.accepted));
}

TEST(PeerSocket, ResetConnectionIsGone) {
  Loopback lb;
  linger l{1, 0};  // close with RST
  setsockopt(lb.client, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(lb.client);
  lb.client = -1;
  EXPECT_TRUE(becomes_gone(lb.accepted));
}

TEST(PeerSocket, NotASocketIsNotAConnection) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  EXPECT_EQ(connection_socket("127.0.0.1", 1, 1), -1);
  close(p[0]);
  close(p[1]);
}

}  // namespace
}  // namespace lowbit
