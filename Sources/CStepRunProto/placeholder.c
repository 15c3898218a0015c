/* replaced by protoc-c output */
