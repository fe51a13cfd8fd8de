"""ctypes declarations generated from include/visioncore.h by tools/gen_decls.py - do not edit."""
from ctypes import POINTER, c_bool, c_char, c_char_p, c_double, c_float, c_int, c_int32, c_int64, c_size_t, c_ssize_t, c_uint8, c_uint64, c_void_p  # noqa: F401

VC_MIX_MODE_BATCH = 0
VC_MIX_MODE_PAIR = 1
VC_MIX_MODE_ELEM = 2
VC_VIDEOMIX_SPATIAL = 0
VC_VIDEOMIX_TEMPORAL = 1
VC_VIDEOMIX_SPATIO_TEMPORAL = 2
VC_LOSS_CROSS_ENTROPY = 0
VC_LOSS_MSE = 1
VC_LOSS_L1 = 2
VC_LOSS_SMOOTH_L1 = 3
VC_LOSS_BCE_WITH_LOGITS = 4
VC_REDUCTION_NONE = 0
VC_REDUCTION_MEAN = 1
VC_REDUCTION_SUM = 2
VC_STORE_NATIVE = 0
VC_STORE_F16 = 1
VC_STORE_BF16 = 2
VC_OK = 0
VC_INVALID_ARGUMENT = 1
VC_SHAPE_MISMATCH = 2
VC_DTYPE_MISMATCH = 3
VC_IO_ERROR = 4
VC_FORMAT_ERROR = 5
VC_OUT_OF_MEMORY = 6
VC_UNSUPPORTED = 7
VC_INVALID_HANDLE = 8
VC_INTERNAL_ERROR = 9
VC_FLOAT32 = 0
VC_INT32 = 1
VC_INT64 = 2
VC_UINT8 = 3
VC_IMAGE_PNG = 0
VC_IMAGE_JPEG = 1
VC_RESIZE_BILINEAR = 0
VC_RESIZE_BICUBIC = 1
VC_RESIZE_BOX = 2
VC_RESIZE_CATMULL_ROM = 3
VC_RESIZE_MITCHELL = 4
VC_RESIZE_BSPLINE = 5
VC_RELU = 0
VC_RELU6 = 1
VC_LEAKY_RELU = 2
VC_SILU = 3
VC_GELU_ERF = 4
VC_GELU_TANH = 5
VC_SIGMOID = 6
VC_TANH = 7
VC_HARD_SWISH = 8
VC_HARD_SIGMOID = 9
VC_EXP = 10
VC_LOG = 11
VC_SQRT = 12
VC_NEG = 13
VC_ABS = 14
VC_ADD = 0
VC_SUB = 1
VC_MUL = 2
VC_DIV = 3
VC_MAXIMUM = 4
VC_MINIMUM = 5
VC_POW = 6
VC_EQ = 0
VC_NE = 1
VC_LT = 2
VC_LE = 3
VC_GT = 4
VC_GE = 5
VC_INTERP_NEAREST = 0
VC_INTERP_BILINEAR = 1
VC_REDUCE_SUM = 0
VC_REDUCE_MEAN = 1
VC_REDUCE_MAX = 2
VC_REDUCE_MIN = 3
VC_PAD_CONSTANT = 0
VC_PAD_REFLECT = 1
VC_PAD_REPLICATE = 2

FUNCTIONS = {
    'vc_tensor_set_requires_grad': (c_int32, [c_void_p, c_int32]),
    'vc_tensor_requires_grad': (c_int32, [c_void_p, POINTER(c_int32)]),
    'vc_tensor_grad': (c_int32, [c_void_p, POINTER(c_void_p)]),
    'vc_tensor_zero_grad': (c_int32, [c_void_p]),
    'vc_tensor_backward': (c_int32, [c_void_p, c_void_p]),
    'vc_tensor_detach': (c_int32, [c_void_p, POINTER(c_void_p)]),
    'vc_set_grad_enabled': (c_int32, [c_int32]),
    'vc_is_grad_enabled': (c_int32, [POINTER(c_int32)]),
    'vc_checkpoint_save': (c_int32, [c_char_p, POINTER(c_void_p), POINTER(c_char_p), c_int64, c_void_p, c_int64, c_int64]),
    'vc_checkpoint_load': (c_int32, [c_char_p, POINTER(c_void_p), POINTER(c_char_p), c_int64, c_void_p, POINTER(c_int64), POINTER(c_int64)]),
    'vc_conv2d': (c_int32, [c_void_p, c_void_p, c_void_p, POINTER(c_int64), POINTER(c_int64), POINTER(c_int64), c_int64, POINTER(c_void_p)]),
    'vc_conv_transpose2d': (c_int32, [c_void_p, c_void_p, c_void_p, POINTER(c_int64), POINTER(c_int64), POINTER(c_int64), c_int64, POINTER(c_int64), POINTER(c_void_p)]),
    'vc_max_pool2d': (c_int32, [c_void_p, POINTER(c_int64), POINTER(c_int64), POINTER(c_int64), POINTER(c_int64), c_int32, POINTER(c_void_p)]),
    'vc_avg_pool2d': (c_int32, [c_void_p, POINTER(c_int64), POINTER(c_int64), POINTER(c_int64), c_int32, c_int32, POINTER(c_void_p)]),
    'vc_adaptive_avg_pool2d': (c_int32, [c_void_p, c_int64, c_int64, POINTER(c_void_p)]),
    'vc_dataset_fashion_mnist': (c_int32, [c_char_p, c_int32, POINTER(c_void_p)]),
    'vc_dataset_image_folder': (c_int32, [c_char_p, c_int32, c_char_p, POINTER(c_void_p)]),
    'vc_dataset_from_tensors': (c_int32, [c_void_p, c_void_p, POINTER(c_void_p)]),
    'vc_dataset_free': (c_int32, [c_void_p]),
    'vc_dataset_len': (c_int32, [c_void_p, POINTER(c_int64)]),
    'vc_dataset_num_classes': (c_int32, [c_void_p, POINTER(c_int64)]),
    'vc_dataset_class_name': (c_int32, [c_void_p, c_int64, POINTER(c_char_p)]),
    'vc_dataset_get': (c_int32, [c_void_p, c_int64, POINTER(c_void_p), POINTER(c_int64)]),
    'vc_transform_create': (c_int32, [POINTER(c_void_p)]),
    'vc_transform_free': (c_int32, [c_void_p]),
    'vc_transform_add_random_resized_crop': (c_int32, [c_void_p, c_int64, c_int64, c_double, c_double, c_double, c_double]),
    'vc_transform_add_horizontal_flip': (c_int32, [c_void_p, c_double]),
    'vc_transform_add_resize': (c_int32, [c_void_p, c_int64, c_int64]),
    'vc_transform_add_center_crop': (c_int32, [c_void_p, c_int64, c_int64]),
    'vc_transform_add_normalize': (c_int32, [c_void_p, POINTER(c_float), POINTER(c_float), c_int64]),
    'vc_transform_add_color_jitter': (c_int32, [c_void_p, c_double, c_double, c_double, c_double]),
    'vc_transform_apply': (c_int32, [c_void_p, c_void_p, c_uint64, POINTER(c_void_p)]),
    'vc_loader_create': (c_int32, [c_void_p, c_void_p, c_int64, c_int32, c_int32, c_uint64, c_int32, POINTER(c_void_p)]),
    'vc_loader_free': (c_int32, [c_void_p]),
    'vc_loader_num_batches': (c_int32, [c_void_p, POINTER(c_int64)]),
    'vc_loader_batch': (c_int32, [c_void_p, c_int64, c_int64, POINTER(c_void_p), POINTER(c_void_p)]),
    'vc_loader_batch_relabel': (c_int32, [c_void_p, c_int64, c_int64, c_int64, c_int32, POINTER(c_void_p), POINTER(c_void_p), POINTER(c_void_p)]),
    'vc_mixer_cutmix': (c_int32, [c_double, c_double, c_int64, c_double, c_uint64, POINTER(c_void_p)]),
    'vc_mixer_mixup': (c_int32, [c_double, c_double, c_int64, c_double, c_uint64, POINTER(c_void_p)]),
    'vc_mixer_timm': (c_int32, [c_double, c_double, c_double, c_double, c_double, c_double, c_int32, c_int32, c_double, c_int64, c_uint64, POINTER(c_void_p)]),
    'vc_mixer_cutout': (c_int32, [c_int64, c_int64, c_int64, c_double, c_uint64, POINTER(c_void_p)]),
    'vc_mixer_videomix': (c_int32, [c_int32, c_double, c_double, c_int64, c_double, c_uint64, POINTER(c_void_p)]),
    'vc_mixer_free': (c_int32, [c_void_p]),
    'vc_mixer_reseed': (c_int32, [c_void_p, c_uint64]),
    'vc_mixer_set_enabled': (c_int32, [c_void_p, c_int32]),
    'vc_mixer_apply': (c_int32, [c_void_p, c_void_p, c_void_p, POINTER(c_void_p), POINTER(c_void_p), POINTER(c_void_p), POINTER(c_void_p)]),
    'vc_binary': (c_int32, [c_int32, c_void_p, c_void_p, POINTER(c_void_p)]),
    'vc_compare': (c_int32, [c_int32, c_void_p, c_void_p, POINTER(c_void_p)]),
    'vc_unary': (c_int32, [c_int32, c_void_p, c_float, POINTER(c_void_p)]),
    'vc_prelu': (c_int32, [c_void_p, c_void_p, POINTER(c_void_p)]),
    'vc_where': (c_int32, [c_void_p, c_void_p, c_void_p, POINTER(c_void_p)]),
    'vc_matmul': (c_int32, [c_void_p, c_void_p, POINTER(c_void_p)]),
    'vc_linear': (c_int32, [c_void_p, c_void_p, c_void_p, POINTER(c_void_p)]),
    'vc_face_detector_create': (c_int32, [c_char_p, c_char_p, POINTER(c_void_p)]),
    'vc_face_detector_free': (c_int32, [c_void_p]),
    'vc_face_detector_detect': (c_int32, [c_void_p, c_void_p, c_float, c_float, POINTER(c_void_p)]),
    'vc_grid_sample': (c_int32, [c_void_p, c_void_p, c_bool, POINTER(c_void_p)]),
    'vc_roi_align': (c_int32, [c_void_p, c_void_p, c_int64, c_int64, c_float, c_int32, c_bool, POINTER(c_void_p)]),
    'vc_box_iou': (c_int32, [c_void_p, c_void_p, POINTER(c_void_p)]),
    'vc_nms': (c_int32, [c_void_p, c_void_p, c_float, POINTER(c_void_p)]),
    'vc_batched_nms': (c_int32, [c_void_p, c_void_p, c_void_p, c_float, POINTER(c_void_p)]),
    'vc_image_load': (c_int32, [c_char_p, c_int32, POINTER(c_void_p)]),
    'vc_image_decode': (c_int32, [c_void_p, c_size_t, c_int32, POINTER(c_void_p)]),
    'vc_image_encode': (c_int32, [c_void_p, c_int32, c_int32, POINTER(c_void_p)]),
    'vc_image_save': (c_int32, [c_void_p, c_char_p, c_int32]),
    'vc_image_to_tensor': (c_int32, [c_void_p, POINTER(c_float), POINTER(c_float), c_int32, POINTER(c_void_p)]),
    'vc_image_resize': (c_int32, [c_void_p, c_int64, c_int64, c_int32, POINTER(c_void_p)]),
    'vc_loss': (c_int32, [c_int32, c_void_p, c_void_p, c_double, c_int64, c_int32, POINTER(c_void_p)]),
    'vc_model_list_count': (c_int32, [POINTER(c_int64)]),
    'vc_model_list_name': (c_int32, [c_int64, POINTER(c_char_p)]),
    'vc_imagenet_class_name': (c_int32, [c_int64, POINTER(c_char_p)]),
    'vc_model_create': (c_int32, [c_char_p, c_int64, c_int64, c_float, c_uint64, POINTER(c_void_p)]),
    'vc_model_free': (c_int32, [c_void_p]),
    'vc_model_name': (c_int32, [c_void_p, POINTER(c_char_p)]),
    'vc_model_num_classes': (c_int32, [c_void_p, POINTER(c_int64), POINTER(c_int64)]),
    'vc_model_load': (c_int32, [c_void_p, c_char_p]),
    'vc_model_load_state_dict': (c_int32, [c_void_p, c_void_p, c_int32]),
    'vc_model_save': (c_int32, [c_void_p, c_char_p]),
    'vc_model_state_dict': (c_int32, [c_void_p, POINTER(c_void_p)]),
    'vc_model_set_training': (c_int32, [c_void_p, c_int32]),
    'vc_model_is_training': (c_int32, [c_void_p, POINTER(c_int32)]),
    'vc_model_forward': (c_int32, [c_void_p, c_void_p, POINTER(c_void_p)]),
    'vc_model_forward_features': (c_int32, [c_void_p, c_void_p, POINTER(c_void_p)]),
    'vc_model_forward_head': (c_int32, [c_void_p, c_void_p, c_int32, POINTER(c_void_p)]),
    'vc_model_num_params': (c_int32, [c_void_p, c_int32, POINTER(c_int64)]),
    'vc_model_parameter_count': (c_int32, [c_void_p, POINTER(c_int64)]),
    'vc_model_parameter': (c_int32, [c_void_p, c_int64, POINTER(c_void_p)]),
    'vc_model_parameter_name': (c_int32, [c_void_p, c_int64, POINTER(c_char_p)]),
    'vc_model_zero_grad': (c_int32, [c_void_p]),
    'vc_model_input_config': (c_int32, [c_void_p, POINTER(c_int64), POINTER(c_float), POINTER(c_float), c_int64, POINTER(c_double), POINTER(c_int32)]),
    'vc_image_eval_transform': (c_int32, [c_void_p, c_void_p, POINTER(c_void_p)]),
    'vc_image_eval_transform_file': (c_int32, [c_char_p, c_void_p, POINTER(c_void_p)]),
    'vc_model_checkpoint_save': (c_int32, [c_char_p, c_void_p, c_void_p, c_void_p, c_int64, c_int64]),
    'vc_model_checkpoint_load': (c_int32, [c_char_p, c_void_p, c_void_p, c_void_p, POINTER(c_int64), POINTER(c_int64)]),
    'vc_optimizer_create': (c_int32, [c_char_p, POINTER(c_void_p), c_int64, POINTER(c_char_p), POINTER(c_int64), c_char_p, POINTER(c_void_p)]),
    'vc_optimizer_free': (c_int32, [c_void_p]),
    'vc_optimizer_step': (c_int32, [c_void_p]),
    'vc_optimizer_zero_grad': (c_int32, [c_void_p]),
    'vc_optimizer_num_groups': (c_int32, [c_void_p, POINTER(c_int64)]),
    'vc_optimizer_get_lr': (c_int32, [c_void_p, c_int64, POINTER(c_double)]),
    'vc_optimizer_set_lr': (c_int32, [c_void_p, c_int64, c_double]),
    'vc_optimizer_save_state': (c_int32, [c_void_p, c_char_p]),
    'vc_optimizer_load_state': (c_int32, [c_void_p, c_char_p]),
    'vc_reduce': (c_int32, [c_int32, c_void_p, POINTER(c_int64), c_int32, c_int32, POINTER(c_void_p)]),
    'vc_var': (c_int32, [c_void_p, POINTER(c_int64), c_int32, c_int64, c_int32, POINTER(c_void_p)]),
    'vc_argmax': (c_int32, [c_void_p, c_int64, c_int32, POINTER(c_void_p)]),
    'vc_argmin': (c_int32, [c_void_p, c_int64, c_int32, POINTER(c_void_p)]),
    'vc_softmax': (c_int32, [c_void_p, c_int64, POINTER(c_void_p)]),
    'vc_log_softmax': (c_int32, [c_void_p, c_int64, POINTER(c_void_p)]),
    'vc_batch_norm': (c_int32, [c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_double, POINTER(c_void_p)]),
    'vc_layer_norm': (c_int32, [c_void_p, POINTER(c_int64), c_int32, c_void_p, c_void_p, c_double, POINTER(c_void_p)]),
    'vc_group_norm': (c_int32, [c_void_p, c_int64, c_void_p, c_void_p, c_double, POINTER(c_void_p)]),
    'vc_interpolate': (c_int32, [c_void_p, c_int64, c_int64, c_double, c_double, c_int32, c_int32, POINTER(c_void_p)]),
    'vc_tensor_map_create': (c_int32, [POINTER(c_void_p)]),
    'vc_tensor_map_free': (c_int32, [c_void_p]),
    'vc_safetensors_load': (c_int32, [c_char_p, POINTER(c_void_p)]),
    'vc_safetensors_save': (c_int32, [c_void_p, c_char_p]),
    'vc_tensor_map_count': (c_int32, [c_void_p, POINTER(c_int64)]),
    'vc_tensor_map_name': (c_int32, [c_void_p, c_int64, POINTER(c_char_p)]),
    'vc_tensor_map_get': (c_int32, [c_void_p, c_char_p, POINTER(c_void_p)]),
    'vc_tensor_map_set': (c_int32, [c_void_p, c_char_p, c_void_p, c_int32]),
    'vc_tensor_map_stored_dtype': (c_int32, [c_void_p, c_char_p, POINTER(c_int32)]),
    'vc_tensor_map_metadata_count': (c_int32, [c_void_p, POINTER(c_int64)]),
    'vc_tensor_map_metadata': (c_int32, [c_void_p, c_int64, POINTER(c_char_p), POINTER(c_char_p)]),
    'vc_tensor_map_set_metadata': (c_int32, [c_void_p, c_char_p, c_char_p]),
    'vc_scheduler_create': (c_int32, [c_char_p, c_void_p, c_char_p, POINTER(c_void_p)]),
    'vc_scheduler_step': (c_int32, [c_void_p]),
    'vc_scheduler_free': (c_int32, [c_void_p]),
    'vc_pad': (c_int32, [c_void_p, POINTER(c_int64), c_int32, c_int32, c_double, POINTER(c_void_p)]),
    'vc_concat': (c_int32, [POINTER(c_void_p), c_int32, c_int64, POINTER(c_void_p)]),
    'vc_stack': (c_int32, [POINTER(c_void_p), c_int32, c_int64, POINTER(c_void_p)]),
    'vc_split': (c_int32, [c_void_p, POINTER(c_int64), c_int32, c_int64, POINTER(c_void_p), c_int32]),
    'vc_gather': (c_int32, [c_void_p, c_int64, c_void_p, POINTER(c_void_p)]),
    'vc_index_select': (c_int32, [c_void_p, c_int64, c_void_p, POINTER(c_void_p)]),
    'vc_topk': (c_int32, [c_void_p, c_int64, c_int64, c_int32, c_int32, POINTER(c_void_p), POINTER(c_void_p)]),
    'vc_last_error_message': (c_char_p, []),
    'vc_version': (c_char_p, []),
    'vc_set_num_threads': (c_int32, [c_int32]),
    'vc_get_num_threads': (c_int32, []),
    'vc_tensor_create': (c_int32, [c_int32, POINTER(c_int64), c_int32, POINTER(c_void_p)]),
    'vc_tensor_from_buffer': (c_int32, [c_int32, POINTER(c_int64), c_int32, c_void_p, c_size_t, POINTER(c_void_p)]),
    'vc_tensor_free': (c_int32, [c_void_p]),
    'vc_tensor_ndim': (c_int32, [c_void_p, POINTER(c_int32)]),
    'vc_tensor_shape': (c_int32, [c_void_p, POINTER(c_int64), c_int32]),
    'vc_tensor_dtype': (c_int32, [c_void_p, POINTER(c_int32)]),
    'vc_tensor_numel': (c_int32, [c_void_p, POINTER(c_int64)]),
    'vc_tensor_data': (c_int32, [c_void_p, POINTER(c_void_p)]),
    'vc_tensor_copy_to': (c_int32, [c_void_p, c_void_p, c_size_t]),
    'vc_tensor_reshape': (c_int32, [c_void_p, POINTER(c_int64), c_int32, POINTER(c_void_p)]),
    'vc_tensor_permute': (c_int32, [c_void_p, POINTER(c_int64), c_int32, POINTER(c_void_p)]),
    'vc_tensor_slice': (c_int32, [c_void_p, c_int64, c_int64, c_int64, c_int64, POINTER(c_void_p)]),
    'vc_tensor_to_dtype': (c_int32, [c_void_p, c_int32, POINTER(c_void_p)]),
    'vc_tensor_rand_uniform': (c_int32, [POINTER(c_int64), c_int32, c_float, c_float, c_uint64, POINTER(c_void_p)]),
    'vc_tensor_rand_normal': (c_int32, [POINTER(c_int64), c_int32, c_float, c_float, c_uint64, POINTER(c_void_p)]),
}
