// A small expected<T, E> for C++20 (std::expected is C++23): every fallible call in l4lb returns
// a value or a named error, never throws, and never hands out a view over too few bytes.
#pragma once

#include <type_traits>
#include <utility>
#include <variant>

namespace l4lb {

template <class E>
struct unexpected {
  E error;
};
template <class E>
unexpected(E) -> unexpected<E>;

template <class T, class E>
class [[nodiscard]] expected {
 public:
  using value_type = T;
  using error_type = E;

  constexpr expected(const T& v) noexcept(std::is_nothrow_copy_constructible_v<T>)
      : v_(std::in_place_index<0>, v) {}
  constexpr expected(T&& v) noexcept(std::is_nothrow_move_constructible_v<T>)
      : v_(std::in_place_index<0>, std::move(v)) {}
  template <class G>
    requires std::is_convertible_v<G, E>
  constexpr expected(unexpected<G> u) noexcept : v_(std::in_place_index<1>, E(u.error)) {}

  [[nodiscard]] constexpr bool has_value() const noexcept { return v_.index() == 0; }
  constexpr explicit operator bool() const noexcept { return has_value(); }

  // Unchecked access, like std::expected's operator*: the caller has tested has_value().
  constexpr T& operator*() & noexcept { return *std::get_if<0>(&v_); }
  constexpr const T& operator*() const& noexcept { return *std::get_if<0>(&v_); }
  constexpr T* operator->() noexcept { return std::get_if<0>(&v_); }
  constexpr const T* operator->() const noexcept { return std::get_if<0>(&v_); }
  constexpr T& value() & noexcept { return **this; }
  constexpr const T& value() const& noexcept { return **this; }
  constexpr T&& value() && noexcept { return std::move(*std::get_if<0>(&v_)); }

  [[nodiscard]] constexpr E error() const noexcept {
    const E* e = std::get_if<1>(&v_);
    return e ? *e : E{};
  }
  template <class U>
  [[nodiscard]] constexpr T value_or(U&& fallback) const& {
    return has_value() ? **this : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  std::variant<T, E> v_;
};

}  // namespace l4lb
