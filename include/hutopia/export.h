/* Symbol visibility for libhutopia. The library is built with hidden
 * visibility; only what carries HUT_EXPORT is part of its ABI. */
#ifndef HUTOPIA_EXPORT_H_
#define HUTOPIA_EXPORT_H_

#if defined(_WIN32)
#if defined(HUT_BUILDING)
#define HUT_EXPORT __declspec(dllexport)
#else
#define HUT_EXPORT __declspec(dllimport)
#endif
#elif defined(__GNUC__) || defined(__clang__)
#define HUT_EXPORT __attribute__((visibility("default")))
#else
#define HUT_EXPORT
#endif

/* An inline function of a public header that the library must not export
 * (it is compiled into each caller, with the caller's view of the types). */
#if defined(__GNUC__) || defined(__clang__)
#define HUT_INLINE_LOCAL __attribute__((visibility("hidden"))) inline
#define HUT_LOCAL __attribute__((visibility("hidden")))
#else
#define HUT_INLINE_LOCAL inline
#define HUT_LOCAL
#endif

#endif /* HUTOPIA_EXPORT_H_ */
