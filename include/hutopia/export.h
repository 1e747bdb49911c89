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

#endif /* HUTOPIA_EXPORT_H_ */
