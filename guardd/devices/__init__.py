"""USB devices: reading their facts from sysfs and udev, and switching them on or off."""
