/* The modem's power key and reset lines through the GPIO character device, uAPI v2 (Linux 5.10+):
 * GPIO_V2_GET_LINE_IOCTL on the chip, then GPIO_V2_LINE_SET_VALUES_IOCTL on the line fd the kernel returns. */
#define _GNU_SOURCE
#include "handset_shim.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/gpio.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* The layout the code below relies on, as the kernel documents it (include/uapi/linux/gpio.h): 64-bit fields are
 * __aligned_u64 so the structs are identical on armv7 and aarch64, and the ioctl numbers encode these sizes. */
_Static_assert(sizeof(struct gpio_v2_line_attribute) == 16, "gpio_v2_line_attribute");
_Static_assert(sizeof(struct gpio_v2_line_config_attribute) == 24, "gpio_v2_line_config_attribute");
_Static_assert(sizeof(struct gpio_v2_line_config) == 8 + 4 + 20 + 24 * GPIO_V2_LINE_NUM_ATTRS_MAX, "gpio_v2_line_config");
_Static_assert(sizeof(struct gpio_v2_line_request) == 592, "gpio_v2_line_request");
_Static_assert(offsetof(struct gpio_v2_line_request, config) == 4 * GPIO_V2_LINES_MAX + GPIO_MAX_NAME_SIZE, "config offset");
_Static_assert(offsetof(struct gpio_v2_line_request, fd) == 588, "fd offset");
_Static_assert(sizeof(struct gpio_v2_line_values) == 16, "gpio_v2_line_values");
_Static_assert(GPIO_V2_LINE_NUM_ATTRS_MAX >= 1 && GPIO_V2_LINES_MAX >= 1, "one line, one attribute");

static const char consumer[] = "handset-fw";
_Static_assert(sizeof consumer <= GPIO_MAX_NAME_SIZE, "consumer label fits");

int hs_gpio_request_output(const char *chip_path, uint32_t line, int initial, int active_low) {
    if (!chip_path) return -EINVAL;
    int chip = open(chip_path, O_RDWR | O_CLOEXEC);
    if (chip < 0) return -errno;
    struct gpio_v2_line_request req;
    memset(&req, 0, sizeof req); /* padding must be zero */
    req.offsets[0] = line;
    req.num_lines = 1;
    memcpy(req.consumer, consumer, sizeof consumer);
    req.config.flags = GPIO_V2_LINE_FLAG_OUTPUT | (active_low ? GPIO_V2_LINE_FLAG_ACTIVE_LOW : 0);
    /* The initial level is an attribute, so the line never glitches to the wrong level when it becomes an output. */
    req.config.num_attrs = 1;
    req.config.attrs[0].attr.id = GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES;
    req.config.attrs[0].attr.values = initial ? 1 : 0;
    req.config.attrs[0].mask = 1;
    int rc = ioctl(chip, GPIO_V2_GET_LINE_IOCTL, &req);
    int err = errno;
    close(chip); /* the line fd stays valid without the chip fd */
    if (rc < 0) return -err;
    if (req.fd <= 0) return -EIO;
    return req.fd;
}

int hs_gpio_set(int line_fd, int value) {
    struct gpio_v2_line_values v;
    memset(&v, 0, sizeof v);
    v.mask = 1;
    v.bits = value ? 1 : 0;
    for (;;) {
        if (ioctl(line_fd, GPIO_V2_LINE_SET_VALUES_IOCTL, &v) == 0) return 0;
        if (errno != EINTR) return -errno;
    }
}

int hs_gpio_release(int line_fd) { return close(line_fd) == 0 ? 0 : -errno; }

uint32_t hs_gpio_request_size(void) { return (uint32_t)sizeof(struct gpio_v2_line_request); }
uint32_t hs_gpio_values_size(void) { return (uint32_t)sizeof(struct gpio_v2_line_values); }
