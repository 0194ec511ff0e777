"""Desktop controls (framework section 2): virtual desktops, image, thin clients."""
