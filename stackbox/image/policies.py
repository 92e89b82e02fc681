"""The image service's default policy: Glance's secure-RBAC defaults.

Targets use Glance's keys: ``project_id`` and ``owner`` are the image's owner,
``visibility`` its visibility, and ``member_id`` the caller's project when that
project is a member of the image. Which images a caller can see at all is decided
before policy, in the queries (another project's private image is 404).
"""

from __future__ import annotations

from oslo_policy import policy

ADMIN = "rule:context_is_admin"
OWNER_MEMBER = f"{ADMIN} or (role:member and project_id:%(project_id)s)"
VISIBLE = (
    "(project_id:%(project_id)s or project_id:%(member_id)s or 'community':%(visibility)s "
    "or 'public':%(visibility)s or 'shared':%(visibility)s)"
)
PROJECT = ["project"]
METADEF_READ = (
    f"{ADMIN} or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))"
)


def _rule(name: str, check: str, description: str) -> policy.RuleDefault:
    return policy.RuleDefault(
        name=name, check_str=check, scope_types=PROJECT, description=description
    )


RULES: list[policy.RuleDefault] = [
    policy.RuleDefault("default", "", description="Rule of last resort."),
    policy.RuleDefault("context_is_admin", "role:admin", description="An administrator."),
    policy.RuleDefault(
        "service_api",
        "role:service or role:admin",
        description="Another OpenStack service acting for a user.",
    ),
    _rule(
        "add_image",
        f"{ADMIN} or (role:member and project_id:%(project_id)s and project_id:%(owner)s)",
        "Create an image.",
    ),
    _rule("delete_image", OWNER_MEMBER, "Delete an image."),
    _rule("get_image", f"{ADMIN} or (role:reader and {VISIBLE})", "Show an image."),
    _rule("get_images", f"{ADMIN} or (role:reader and project_id:%(project_id)s)", "List images."),
    _rule("modify_image", OWNER_MEMBER, "Update an image."),
    _rule("publicize_image", ADMIN, "Make an image public."),
    _rule("communitize_image", OWNER_MEMBER, "Make an image community."),
    _rule("download_image", f"{ADMIN} or (role:member and {VISIBLE})", "Download image data."),
    _rule("upload_image", OWNER_MEMBER, "Upload image data."),
    _rule("add_member", OWNER_MEMBER, "Share an image with a project."),
    _rule("delete_member", OWNER_MEMBER, "Stop sharing an image with a project."),
    _rule(
        "get_member",
        f"{ADMIN} or role:reader and (project_id:%(project_id)s or project_id:%(member_id)s)",
        "Show an image member.",
    ),
    _rule(
        "get_members",
        f"{ADMIN} or role:reader and (project_id:%(project_id)s or project_id:%(member_id)s)",
        "List image members.",
    ),
    _rule(
        "modify_member",
        f"{ADMIN} or (role:member and project_id:%(member_id)s)",
        "Accept or reject an image shared with you.",
    ),
    _rule(
        "get_image_location",
        f"{ADMIN} or (role:reader and project_id:%(project_id)s)",
        "Show where an image's data is.",
    ),
    _rule("delete_image_location", ADMIN, "Remove one store's copy of an image."),
    _rule("set_image_location", OWNER_MEMBER, "Add or replace image locations (PATCH)."),
    _rule(
        "add_image_location",
        "rule:service_api or (role:member and project_id:%(project_id)s)",
        "Add a location to a queued image (POST /v2/images/{image_id}/locations).",
    ),
    _rule("fetch_image_location", "rule:service_api", "List an image's locations."),
    _rule("deactivate", OWNER_MEMBER, "Deactivate an image."),
    _rule("reactivate", OWNER_MEMBER, "Reactivate an image."),
    _rule("copy_image", ADMIN, "Copy an image to other stores."),
    _rule("manage_image_cache", ADMIN, "Manage the image cache."),
    _rule("cache_image", ADMIN, "Queue an image for caching."),
    _rule("cache_list", ADMIN, "List the image cache."),
    _rule("cache_delete", ADMIN, "Remove an image from the cache."),
    _rule("cache_clean", ADMIN, "Clean the image cache."),
    _rule("cache_prune", ADMIN, "Prune the image cache."),
    _rule("stores_info_detail", f"{ADMIN} or rule:service_api", "Show store details."),
    _rule("get_task", "rule:default", "Show a task."),
    _rule("get_tasks", "rule:default", "List tasks."),
    _rule("add_task", "rule:default", "Create a task."),
    _rule("modify_task", "rule:default", "Update a task."),
    _rule("tasks_api_access", ADMIN, "Use the tasks API."),
    policy.RuleDefault("metadef_default", "", description="Metadefs rule of last resort."),
    policy.RuleDefault("metadef_admin", ADMIN, description="Metadefs administrator."),
    _rule("get_metadef_namespace", METADEF_READ, "Show a metadef namespace."),
    _rule(
        "get_metadef_namespaces",
        f"{ADMIN} or (role:reader and project_id:%(project_id)s)",
        "List metadef namespaces.",
    ),
    _rule("modify_metadef_namespace", "rule:metadef_admin", "Update a namespace."),
    _rule("add_metadef_namespace", "rule:metadef_admin", "Create a namespace."),
    _rule("delete_metadef_namespace", "rule:metadef_admin", "Delete a namespace."),
    _rule("get_metadef_object", METADEF_READ, "Show a metadef object."),
    _rule("get_metadef_objects", METADEF_READ, "List metadef objects."),
    _rule("modify_metadef_object", "rule:metadef_admin", "Update a metadef object."),
    _rule("add_metadef_object", "rule:metadef_admin", "Create a metadef object."),
    _rule("delete_metadef_object", "rule:metadef_admin", "Delete a metadef object."),
    _rule("list_metadef_resource_types", METADEF_READ, "List resource types."),
    _rule("get_metadef_resource_type", METADEF_READ, "Show resource type associations."),
    _rule(
        "add_metadef_resource_type_association", "rule:metadef_admin", "Associate a resource type."
    ),
    _rule(
        "remove_metadef_resource_type_association",
        "rule:metadef_admin",
        "Dissociate a resource type.",
    ),
    _rule("get_metadef_property", METADEF_READ, "Show a metadef property."),
    _rule("get_metadef_properties", METADEF_READ, "List metadef properties."),
    _rule("modify_metadef_property", "rule:metadef_admin", "Update a metadef property."),
    _rule("add_metadef_property", "rule:metadef_admin", "Create a metadef property."),
    _rule("remove_metadef_property", "rule:metadef_admin", "Delete a metadef property."),
    _rule("get_metadef_tag", METADEF_READ, "Show a metadef tag."),
    _rule("get_metadef_tags", METADEF_READ, "List metadef tags."),
    _rule("modify_metadef_tag", "rule:metadef_admin", "Update a metadef tag."),
    _rule("add_metadef_tag", "rule:metadef_admin", "Create a metadef tag."),
    _rule("add_metadef_tags", "rule:metadef_admin", "Create metadef tags."),
    _rule("delete_metadef_tag", "rule:metadef_admin", "Delete a metadef tag."),
    _rule("delete_metadef_tags", "rule:metadef_admin", "Delete all tags of a namespace."),
]


def list_rules() -> list[policy.RuleDefault]:
    return list(RULES)
