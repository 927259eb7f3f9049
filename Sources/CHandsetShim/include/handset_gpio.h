/* Modem power key and reset lines through the Linux GPIO character device (uAPI v2, <linux/gpio.h>).
 * Every call returns >= 0 on success or -errno and never aborts; nothing here keeps state. */
#ifndef HANDSET_GPIO_H
#define HANDSET_GPIO_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Requests one line of chip_path (e.g. "/dev/gpiochip0") as an output for consumer "handset-fw", driven to
 * initial (0 or 1; with active_low the kernel inverts the physical level). Returns the line fd or -errno:
 * -ENOENT no such chip, -ENOTTY not a GPIO chip, -EINVAL no such line, -EBUSY line owned by someone else. */
int hs_gpio_request_output(const char *chip_path, uint32_t line, int initial, int active_low);
/* Drives the requested line to value (0 or 1). Returns 0 or -errno. */
int hs_gpio_set(int line_fd, int value);
/* Releases the line (the kernel keeps or floats the level, per driver). Returns 0 or -errno. */
int hs_gpio_release(int line_fd);

/* Sizes of the uAPI v2 structs this shim fills, for the layout tests (sizes are ABI: equal on every arch). */
uint32_t hs_gpio_request_size(void);
uint32_t hs_gpio_values_size(void);

#ifdef __cplusplus
}
#endif
#endif
