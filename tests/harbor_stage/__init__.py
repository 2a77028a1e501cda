"""The Harbor stage's own files: a chroot environment, the model server, the driver."""
