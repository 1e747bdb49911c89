// An outgoing WebSocket payload prepared once and shared by every recipient.
//
// The buffer keeps LWS_PRE bytes of headroom in front of the payload, where
// lws_write() puts the frame header. Server frames are never masked, so the
// header lws writes there is the same for every recipient of one frame, and
// sequential writes from the loop thread may share the buffer.
//
// Ownership: shared (std::shared_ptr); a frame lives while any connection's
// output queue holds it. Thread: built on any thread, written on the loop.
#ifndef HUTOPIA_NET_FRAME_H_
#define HUTOPIA_NET_FRAME_H_

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string_view>

namespace hut::net {

class OutFrame {
 public:
  // A text frame holding a copy of `payload`.
  static std::shared_ptr<OutFrame> text(std::string_view payload);
  // A text frame holding the pieces one after the other.
  static std::shared_ptr<OutFrame> concat(std::initializer_list<std::string_view> pieces);

  unsigned char* payload() { return data_.get() + headroom(); }
  size_t size() const { return size_; }
  std::string_view view() const {
    return std::string_view(reinterpret_cast<const char*>(data_.get() + headroom()), size_);
  }
  static size_t headroom();

 private:
  OutFrame(std::unique_ptr<unsigned char[]> data, size_t size) : data_(std::move(data)), size_(size) {}
  std::unique_ptr<unsigned char[]> data_;
  size_t size_;
};

using FramePtr = std::shared_ptr<OutFrame>;

}  // namespace hut::net

#endif  // HUTOPIA_NET_FRAME_H_
